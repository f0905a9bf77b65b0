/* A minimal test harness for the C API tests (plain C99): checks that count passes and
 * failures, status checks that also look for a word in reel_last_error(), fixture paths, and
 * the final "N passed, M failed" line (the exit status is non-zero on any failure). */
#ifndef REEL_CAPI_TEST_H
#define REEL_CAPI_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reel.h"

static int capi_passed = 0;
static int capi_failed = 0;

#define CHECK(cond)                                                           \
  do {                                                                        \
    if (cond) {                                                               \
      ++capi_passed;                                                          \
    } else {                                                                  \
      ++capi_failed;                                                          \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                         \
  } while (0)

/* The call returns `want`, and (when `word` is not NULL) the last error mentions `word`. */
#define CHECK_STATUS(call, want, word) capi_check_status((call), (want), (word), #call, __FILE__, __LINE__)

static void capi_check_status(reel_status got, reel_status want, const char* word, const char* text, const char* file,
                              int line) {
  int ok = got == want;
  if (ok && want != REEL_OK && word && !strstr(reel_last_error(), word)) ok = 0;
  if (ok && want != REEL_OK && reel_last_error()[0] == '\0') ok = 0; /* a failure always has a message */
  if (ok) {
    ++capi_passed;
    return;
  }
  ++capi_failed;
  fprintf(stderr, "%s:%d: %s\n  returned %s (%d), wanted %s (%d)%s%s%s\n  last error: %s\n", file, line, text,
          reel_status_string(got), (int)got, reel_status_string(want), (int)want, word ? ", mentioning \"" : "",
          word ? word : "", word ? "\"" : "", reel_last_error());
}

static int capi_finish(const char* suite) {
  printf("%s: %d passed, %d failed\n", suite, capi_passed, capi_failed);
  return capi_failed == 0 ? 0 : 1;
}

/* dst = a + b (paths), truncated safely. */
static const char* capi_path(char* dst, size_t size, const char* a, const char* b) {
  snprintf(dst, size, "%s/%s", a, b);
  return dst;
}

/* The repository's tiny model: <fixtures>/../../models/tiny-wan-t2v. */
static const char* capi_tiny_model(void) {
  static char path[1024];
  snprintf(path, sizeof path, "%s/../../models/tiny-wan-t2v", REEL_FIXTURES_DIR);
  return path;
}

/* Writes `size` bytes of `data` to path; returns 0 on success. */
static int capi_write_file(const char* path, const void* data, size_t size) {
  FILE* f = fopen(path, "wb");
  size_t n;
  if (!f) return -1;
  n = fwrite(data, 1, size, f);
  fclose(f);
  return n == size ? 0 : -1;
}

/* Copies the first `keep` bytes of src to dst (keep = (size_t)-1: everything); 0 on success. */
static int capi_copy_file(const char* src, const char* dst, size_t keep) {
  FILE* in = fopen(src, "rb");
  FILE* out;
  char buf[65536];
  size_t n, total = 0;
  if (!in) return -1;
  out = fopen(dst, "wb");
  if (!out) {
    fclose(in);
    return -1;
  }
  while ((n = fread(buf, 1, sizeof buf, in)) > 0 && total < keep) {
    if (n > keep - total) n = keep - total;
    fwrite(buf, 1, n, out);
    total += n;
  }
  fclose(in);
  fclose(out);
  return 0;
}

#endif /* REEL_CAPI_TEST_H */
