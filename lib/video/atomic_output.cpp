// Write-then-rename outputs: temporary sibling names, commit by rename, cleanup on failure.
#include "video/atomic_output.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>

#include "reel/status.hpp"

namespace reel::video {
namespace fs = std::filesystem;

std::string os_error(int err) {
  char buf[256];
  // GNU strerror_r may return a static string instead of filling buf.
  const char* msg = strerror_r(err, buf, sizeof buf);
  return msg ? std::string(msg) : std::string("error ") + std::to_string(err);
}

namespace {

[[noreturn]] void fail(const fs::path& final_path, const std::string& why) {
  throw Error(StatusCode::io_error, "cannot write '" + final_path.string() + "': " + why);
}

// "dir/" and "dir" name the same folder; keep "/" itself.
fs::path strip_trailing_slashes(const fs::path& p) {
  std::string s = p.native();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return fs::path(s);
}

std::string unique_suffix() {
  static std::atomic<uint64_t> counter{0};
  static const uint64_t salt = std::random_device{}();
  return ".reel-tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1)) + "-" +
         std::to_string(salt % 1000000);
}

}  // namespace

AtomicOutput::AtomicOutput(const fs::path& final_path, Kind kind) : kind_(kind) {
  final_ = strip_trailing_slashes(final_path);
  const std::string name = final_.filename().string();
  if (name.empty() || name == "." || name == "..") fail(final_path, "the path does not name a file or folder");
  fs::path parent = final_.parent_path();
  if (parent.empty()) parent = ".";

  struct stat st {};
  const bool exists = ::stat(final_.c_str(), &st) == 0;
  if (kind == Kind::file) {
    if (exists && S_ISDIR(st.st_mode)) fail(final_path, "it is a folder");
  } else if (exists) {
    if (!S_ISDIR(st.st_mode)) fail(final_path, "it exists and is not a folder");
    std::error_code ec;
    if (!fs::is_empty(final_, ec) || ec)
      fail(final_path, "the folder is not empty (PNG frames are written only into a new or empty folder)");
  }

  const fs::path ext = final_.extension();
  for (int attempt = 0; attempt < 100; ++attempt) {
    std::string temp_name(1, '.');
    temp_name += final_.stem().string();
    temp_name += unique_suffix();
    temp_name += ext.string();
    fs::path candidate = parent / temp_name;
    int rc;
    if (kind == Kind::file) {
      rc = ::open(candidate.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
      if (rc >= 0) ::close(rc);
    } else {
      rc = ::mkdir(candidate.c_str(), 0777);
    }
    if (rc >= 0) {
      temp_ = candidate;
      return;
    }
    const int err = errno;
    if (err == EEXIST) continue;
    struct stat parent_st {};
    if (err == ENOENT && ::stat(parent.c_str(), &parent_st) != 0)
      fail(final_path, "the folder '" + parent.string() + "' does not exist");
    fail(final_path, os_error(err) + " (creating a file in '" + parent.string() + "')");
  }
  fail(final_path, "could not find an unused temporary name next to it");
}

AtomicOutput::~AtomicOutput() {
  if (committed_ || temp_.empty()) return;
  std::error_code ec;
  if (kind_ == Kind::file)
    fs::remove(temp_, ec);
  else
    fs::remove_all(temp_, ec);
}

void AtomicOutput::commit() {
  if (::rename(temp_.c_str(), final_.c_str()) != 0) {
    const int err = errno;
    fail(final_, os_error(err) + " (renaming '" + temp_.string() + "' into place)");
  }
  committed_ = true;
}

void write_file(const fs::path& path, std::span<const uint8_t> bytes, const fs::path& label) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) fail(label, os_error(errno));
  const size_t written = bytes.empty() ? 0 : std::fwrite(bytes.data(), 1, bytes.size(), f);
  const int write_err = written == bytes.size() ? 0 : (errno ? errno : EIO);
  const int close_rc = std::fclose(f);  // flushes: reports a full disk
  if (write_err) fail(label, os_error(write_err));
  if (close_rc != 0) fail(label, os_error(errno));
}

}  // namespace reel::video
