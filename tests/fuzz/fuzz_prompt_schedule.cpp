// libFuzzer target for the text a user hands reel besides the model: prompt schedules
// (parse_prompt_schedule: numbers, units, bounds, UTF-8, the quoted excerpts in its messages),
// the prompt check every prompt passes (size, UTF-8), and the strict JSON reader behind every
// config.json / model_index.json / reel_defaults.json. Anything but a reel::Error escaping, an
// accepted schedule that breaks its own promises, or an ASan report, is a crash.
//
// Build as tests/fuzz/CMakeLists.txt says, then run (seeded with a few schedules):
//   ninja -C build-fuzz fuzz_prompt_schedule
//   mkdir -p build-fuzz/schedule-corpus && printf '0 a fox\n3 a cat\n' > build-fuzz/schedule-corpus/a \
//     && printf '0s: walk\n7.5s open the door\n# note\n' > build-fuzz/schedule-corpus/b
//   build-fuzz/tests/fuzz/fuzz_prompt_schedule build-fuzz/schedule-corpus -max_total_time=1800 \
//     -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "pipeline/pipeline_impl.hpp"
#include "reel/status.hpp"
#include "reel/video_session.hpp"
#include "weights/strict_json.hpp"

namespace {

[[noreturn]] void crash() { __builtin_trap(); }

void printable_message(const reel::Error& e) {
  for (const char* p = e.what(); *p; ++p)
    if (static_cast<unsigned char>(*p) < 0x20 && *p != '\n') crash();  // input bytes echoed raw
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const auto schedule = reel::parse_prompt_schedule(text, "fuzz");
    if (schedule.empty()) crash();
    for (size_t i = 0; i < schedule.size(); ++i) {
      const reel::ScheduledPrompt& e = schedule[i];
      if (!std::isfinite(e.start) || e.start < 0 || e.prompt.empty()) crash();
      if (e.start > (e.in_seconds ? reel::kMaxScheduleSeconds : reel::kMaxScheduleChunk)) crash();
      if (i > 0 && (e.start <= schedule[i - 1].start || e.in_seconds != schedule[i - 1].in_seconds)) crash();
      reel::pipeline::check_prompt_text(e.prompt, "prompt");  // accepted prompts pass the prompt check
    }
  } catch (const reel::Error& e) {
    if (e.code() != reel::StatusCode::invalid_argument) crash();
    printable_message(e);
  }
  try {
    reel::pipeline::check_prompt_text(text, "prompt");
  } catch (const reel::Error& e) {
    if (e.code() != reel::StatusCode::invalid_argument) crash();
  }
  try {
    (void)reel::detail::parse_json_strict(text, "fuzz.json");
  } catch (const reel::Error& e) {
    if (e.code() != reel::StatusCode::bad_format) crash();
  }
  return 0;
}
