// reel-cli generate with --chunks / --duration / --prompt-schedule / --continue: an endless-
// video session whose chunks stream into the output file as they are produced (Ctrl-C keeps
// the frames made so far).
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "cli_args.hpp"
#include "extend_command.hpp"
#include "progress_bar.hpp"
#include "reel/video_session.hpp"
#include "reel/video_stream.hpp"

namespace reel_cli {

namespace {

// "60s", "60", "1.5m", "90sec" → seconds.
double parse_duration(const std::string& text) {
  double v = 0;
  char unit[8] = {};
  const int n = std::sscanf(text.c_str(), "%lf%7s", &v, unit);
  const std::string u = n == 2 ? unit : "s";
  const double scale = u == "s" || u == "sec" ? 1.0 : u == "m" || u == "min" ? 60.0 : -1.0;
  if (n < 1 || scale < 0 || !std::isfinite(v) || v <= 0)
    throw UsageError("--duration must look like 60s, 90 or 1.5m, got \"" + text + "\"");
  if (v * scale > reel::kMaxScheduleSeconds) throw UsageError("--duration is longer than 1e7 seconds");
  return v * scale;
}

reel::ContextConditioning parse_conditioning(const std::string& s) {
  if (s == "auto") return reel::ContextConditioning::automatic;
  if (s == "per-token" || s == "per_token") return reel::ContextConditioning::per_token;
  if (s == "replacement") return reel::ContextConditioning::replacement;
  throw UsageError("--conditioning must be auto, per-token or replacement, got \"" + s + "\"");
}

// A source frame at the output's size (the session resizes its context the same way).
void write_resized(reel::VideoStreamWriter& out, const std::vector<uint8_t>& rgb, int width, int height,
                   reel::ResizeMode mode) {
  if (width == out.width() && height == out.height()) {
    out.write_frame(rgb.data());
    return;
  }
  const reel::Image im = reel::resize_image(reel::Image{width, height, rgb}, out.width(), out.height(), mode);
  out.write_frame(im.rgb.data());
}

}  // namespace

void check_extension_args(const Args& args) {
  if (args.has("--chunks") && args.has("--duration")) throw UsageError("give --chunks or --duration, not both");
  if (args.has("--chunks") && args.get_int("--chunks", 1) < 1) throw UsageError("--chunks must be at least 1");
  if (auto d = args.get("--duration")) (void)parse_duration(*d);
  if (args.get_int("--context-frames", 1) < 1) throw UsageError("--context-frames must be at least 1");
  (void)parse_conditioning(args.get_or("--conditioning", "auto"));
  if (args.has("--image") && args.has("--continue"))
    throw UsageError("give --image (a new clip's first frame) or --continue, not both");
  if (auto path = args.get("--prompt-schedule")) (void)reel::read_prompt_schedule(*path);
}

bool wants_extension(const Args& args) {
  return args.has("--chunks") || args.has("--duration") || args.has("--prompt-schedule") || args.has("--continue");
}

int extend_command(const reel::Pipeline& pipe, reel::GenerateRequest req, const Args& args, const std::string& output) {
  check_extension_args(args);
  reel::VideoSessionOptions o;
  o.context_frames = args.get_int("--context-frames", 1);
  o.conditioning = parse_conditioning(args.get_or("--conditioning", "auto"));
  if (auto path = args.get("--prompt-schedule")) o.prompts = reel::read_prompt_schedule(*path);
  const std::string source = args.get_or("--continue", "");
  if (!source.empty()) {
    o.source = reel::read_video_tail(source, 4 * (std::max(o.context_frames, 1) - 1) + 1);
    if (req.width == 0 && req.height == 0) req.width = o.source->width, req.height = o.source->height;
  }
  o.request = std::move(req);
  reel::VideoSession session(pipe, o);
  for (const std::string& n : session.notices()) std::fprintf(stderr, "note: %s\n", n.c_str());

  // How much to make: --chunks, --duration (trimmed to the exact frame count), or up to the
  // last scheduled prompt, or one chunk.
  int chunks = 1;
  int64_t frame_limit = -1;
  if (args.has("--chunks")) {
    chunks = args.get_int("--chunks", 1);
  } else if (auto d = args.get("--duration")) {
    const double seconds = parse_duration(*d);
    chunks = session.chunks_for_seconds(seconds);
    frame_limit = int64_t(std::ceil(seconds * session.fps() - 1e-9));
  } else if (!o.prompts.empty()) {
    const reel::ScheduledPrompt& last = o.prompts.back();
    chunks = last.in_seconds ? session.chunks_for_seconds(last.start) + 1 : int(last.start) + 1;
  }
  std::fprintf(stderr, "%d chunk(s) of %d latent frames (%d carried over, %s context), %lld frames, %dx%d at %g fps\n",
               chunks, session.window_latent_frames(), session.context_frames(),
               std::string(reel::context_conditioning_name(session.conditioning())).c_str(),
               static_cast<long long>(frame_limit >= 0 ? frame_limit : session.frames_after(chunks)), session.width(),
               session.height(), session.fps());

  reel::VideoStreamWriter out(output, session.width(), session.height(), session.fps());
  if (!source.empty()) {  // the clip being continued comes first
    reel::VideoStreamReader in(source);
    std::vector<uint8_t> rgb;
    while (in.read(rgb)) write_resized(out, rgb, in.width(), in.height(), o.request.image_resize);
    std::fprintf(stderr, "copied %lld frames of %s\n", static_cast<long long>(in.frames_read()), source.c_str());
  }
  const int64_t source_frames = out.frames_written();

  ProgressBar bar(args.get_or("--preview", ""));
  double generating = 0;
  int done = 0;
  try {
    for (int k = 0; k < chunks; ++k) {
      std::fprintf(stderr, "chunk %d/%d\n", k + 1, chunks);
      reel::VideoChunk c = session.next(&bar);
      for (const reel::StageTime& s : c.timings) generating += s.seconds;
      int keep = c.video.frames;
      if (frame_limit >= 0) keep = int(std::min<int64_t>(keep, frame_limit - (out.frames_written() - source_frames)));
      for (int t = 0; t < keep; ++t) out.write_frame(c.video.frame(t));
      std::fprintf(stderr, "  %d frames%s%s\n", keep, c.prompt.empty() ? "" : " — ", c.prompt.c_str());
      ++done;
    }
  } catch (const reel::Error& e) {
    // Cancelled or failed: the chunks made so far are kept (a finished chunk is never thrown away).
    if (out.frames_written() == 0) throw;
    out.close();
    const bool cancelled = e.code() == reel::StatusCode::cancelled;
    if (!cancelled)
      std::fprintf(stderr, "\nreel-cli generate: %s: %s\n", reel::status_name(e.code()), e.what());
    std::fprintf(stderr, "%s after %d chunk(s): wrote %s with %lld frames\n", cancelled ? "\ncancelled" : "stopped", done,
                 output.c_str(), static_cast<long long>(out.frames_written()));
    return cancelled ? 130 : 1;
  }
  out.close();
  std::fprintf(stderr, "\n%d chunk(s) in %s (%s per chunk)\n", done, format_seconds(generating).c_str(),
               format_seconds(done ? generating / done : 0).c_str());
  std::printf("wrote %s: %dx%d, %lld frames (%lld new), %.0f fps\n", output.c_str(), session.width(), session.height(),
              static_cast<long long>(out.frames_written()), static_cast<long long>(out.frames_written() - source_frames),
              session.fps());
  return 0;
}

}  // namespace reel_cli
