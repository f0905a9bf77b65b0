// Prompt schedules for extended clips: the text format ("<start> <prompt>" per line, start a
// chunk index or seconds) and the names of the context-conditioning modes.
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <string>

#include "pipeline/pipeline_impl.hpp"
#include "regular_file.hpp"
#include "reel/status.hpp"
#include "reel/video_session.hpp"

namespace reel {

std::string_view context_conditioning_name(ContextConditioning c) {
  switch (c) {
    case ContextConditioning::automatic: return "automatic";
    case ContextConditioning::per_token: return "per_token";
    case ContextConditioning::replacement: return "replacement";
  }
  return "?";
}

namespace {

// A line as it may appear in a message: printable ASCII, at most 60 characters.
std::string excerpt(std::string_view line) {
  std::string out;
  for (char c : line.substr(0, 60)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  return "'" + out + (line.size() > 60 ? "...'" : "'");
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

}  // namespace

std::vector<ScheduledPrompt> parse_prompt_schedule(std::string_view text, std::string_view name) {
  std::vector<ScheduledPrompt> out;
  int line_no = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    const size_t end = std::min(text.find('\n', pos), text.size());
    std::string_view line = trim(text.substr(pos, end - pos));
    pos = end + 1;
    ++line_no;
    if (line.empty() || line.front() == '#') {
      if (end == text.size()) break;
      continue;
    }
    const std::string where = std::string(name) + " line " + std::to_string(line_no) + ": ";
    // The start: digits with an optional fraction, then 's' for seconds, then an optional ':'.
    size_t i = 0;
    while (i < line.size() && (std::isdigit(static_cast<unsigned char>(line[i])) || line[i] == '.')) ++i;
    const std::string number(line.substr(0, i));
    char* parse_end = nullptr;
    const double start = number.empty() ? -1.0 : std::strtod(number.c_str(), &parse_end);
    require(!number.empty() && parse_end == number.c_str() + number.size() && std::isfinite(start) && start >= 0,
            StatusCode::invalid_argument,
            where + excerpt(line) +
                " does not start with a chunk index (\"3\") or a time in seconds (\"7.5s\") followed by the prompt");
    ScheduledPrompt entry;
    entry.start = start;
    if (i < line.size() && line[i] == 's') {
      entry.in_seconds = true;
      ++i;
      require(start <= kMaxScheduleSeconds, StatusCode::invalid_argument,
              where + "start " + excerpt(number) + " is past the last second a schedule may name (1e7)");
    } else {
      require(number.find('.') == std::string::npos, StatusCode::invalid_argument,
              where + "chunk index " + excerpt(number) + " must be a whole number (write \"" + number + "s\" for seconds)");
      require(start <= kMaxScheduleChunk, StatusCode::invalid_argument,
              where + "chunk index " + excerpt(number) + " is past the last chunk a schedule may name (1000000)");
    }
    if (i < line.size() && line[i] == ':') ++i;
    require(i == line.size() || std::isspace(static_cast<unsigned char>(line[i])) || line[i - 1] == ':',
            StatusCode::invalid_argument, where + "put a space between the start and the prompt");
    entry.prompt = std::string(trim(line.substr(i)));
    require(!entry.prompt.empty(), StatusCode::invalid_argument, where + "the prompt is empty");
    pipeline::check_prompt_text(entry.prompt, where + "the prompt");
    if (!out.empty()) {
      require(out.back().in_seconds == entry.in_seconds, StatusCode::invalid_argument,
              where + "mixes chunk indices and seconds; use one kind of start throughout");
      require(entry.start > out.back().start, StatusCode::invalid_argument,
              where + "starts must increase (" + std::to_string(entry.start) + " after " +
                  std::to_string(out.back().start) + ")");
    }
    out.push_back(std::move(entry));
    if (end == text.size()) break;
  }
  require(!out.empty(), StatusCode::invalid_argument, std::string(name) + " holds no prompts");
  return out;
}

std::vector<ScheduledPrompt> read_prompt_schedule(const std::filesystem::path& path) {
  return parse_prompt_schedule(detail::read_small_file(path, "prompt schedule", kMaxPromptScheduleBytes),
                               path.string());
}

}  // namespace reel
