// Endless video: a clip extended chunk by chunk, each new window of latent frames denoised
// while the last K latent frames of the previous window are held fixed, frames decoded
// incrementally through the VAE's causal cache and handed back (or written) as they come.
// Memory stays bounded however long the clip grows. Details and what to expect at the seams:
// docs/extension.md.
//
//   reel::Pipeline pipe = reel::Pipeline::load({.folder = "Wan2.2-TI2V-5B-Diffusers"});
//   reel::VideoSessionOptions o;
//   o.request.prompt = "walk down the corridor";
//   o.request.width = 1280; o.request.height = 704; o.request.frames = 33;   // the window
//   o.request.seed = 7;
//   o.context_frames = 2;                                  // latent frames carried over
//   o.prompts = reel::parse_prompt_schedule("0s walk down the corridor\n6s open the door\n");
//   reel::VideoSession session(pipe, o);
//   reel::VideoStreamWriter out("corridor.mp4", session.width(), session.height(), session.fps());
//   for (int k = 0; k < session.chunks_for_seconds(60.0); ++k)
//     out.write(session.next().video);                     // 33 frames, then 28 per chunk
//   out.close();
//
// Continuing an existing clip: set `source` to (at least) its last frames; they are encoded
// with the VAE and become the first window's context, and the VAE decoder is primed with them.
//
// Progress and cancel follow Pipeline::generate: the observer sees the stages of each chunk
// ("text", "encode", "denoise", "decode"); cancelling throws Error(cancelled). A chunk
// cancelled while denoising leaves the session as it was (the next call redoes that chunk
// with the same noise); one cancelled while decoding keeps its latents and the frames decoded
// so far, and the next call finishes that chunk (VideoChunk::index repeats). After any other
// error during decoding, the session refuses further calls (start a new one from the file).
//
// Thread safety: a session is used by one thread at a time; sessions (and generate() calls)
// may share one Pipeline.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "reel/export.hpp"
#include "reel/pipeline.hpp"
#include "reel/tensor.hpp"
#include "reel/video_io.hpp"

namespace reel {

// How the fixed context frames enter each window's denoising.
enum class ContextConditioning : uint8_t {
  automatic,  // per_token for models that take per-token timesteps (Wan 2.2 TI2V), else replacement
  // The context latents are given clean and their tokens get timestep 0, Wan 2.2 TI2V's
  // first-frame rule applied to K frames.
  per_token,
  // Every model call sees the context frames noised to the current level, (1 − σ)·c + σ·ε
  // with ε the window's own noise for those frames; all tokens share the timestep.
  replacement,
};
REEL_API std::string_view context_conditioning_name(ContextConditioning c);  // "per_token", ...

// One entry of a prompt schedule: from `start` on (a chunk index, or seconds into the clip
// when `in_seconds`), chunks use `prompt` (or `embeds`, [T, text_dim], when defined).
struct ScheduledPrompt {
  double start = 0;
  bool in_seconds = false;
  std::string prompt;
  Tensor embeds;
};

// Limits of a prompt schedule: its size, and how late an entry may start.
inline constexpr size_t kMaxPromptScheduleBytes = size_t(1) << 20;  // 1 MiB
inline constexpr double kMaxScheduleChunk = 1e6;                    // chunk index
inline constexpr double kMaxScheduleSeconds = 1e7;                  // 115 days of video

// Parses a prompt schedule, one entry per line: `<start> <prompt>`, where start is a chunk
// index ("0", "3", at most kMaxScheduleChunk) or a time in seconds ("0s", "7.5s", at most
// kMaxScheduleSeconds), optionally followed by ':'. Blank lines and lines starting with '#'
// are skipped. Starts must increase; every prompt must be valid UTF-8 of at most
// kMaxPromptBytes. Everything is checked here, before any work: throws invalid_argument
// naming `name` and the line (quoting at most 60 printable characters of it).
REEL_API std::vector<ScheduledPrompt> parse_prompt_schedule(std::string_view text,
                                                           std::string_view name = "prompt schedule");
// Reads and parses a schedule file: a regular file of at most kMaxPromptScheduleBytes (a FIFO
// or /dev/zero is refused before reading). not_found, bad_format or parse_prompt_schedule's errors.
REEL_API std::vector<ScheduledPrompt> read_prompt_schedule(const std::filesystem::path& path);

struct VideoSessionOptions {
  // The first window and everything every window shares: prompt, negative prompt, size,
  // frames (the window length, 4k + 1; k + 1 latent frames), steps, guidance, shift, sampler,
  // schedule, seed, batch_cfg, keep_float_frames, cancel. `image` (TI2V, I2V) conditions the
  // first chunk as in generate(); `initial_noise` is the first chunk's noise. On I2V models each
  // later window is conditioned the same way on the last 4(K − 1) + 1 frames made so far, and
  // Wan 2.1 I2V keeps the first image's CLIP features (or `image_context`) for every window.
  GenerateRequest request;
  // K: latent frames carried from one window into the next (1 <= K < window latent frames).
  // Each later chunk adds window − K latent frames = 4·(window − K) pixel frames.
  int context_frames = 1;
  ContextConditioning conditioning = ContextConditioning::automatic;
  // Prompts by chunk or time; chunks before the first entry use request.prompt.
  std::vector<ScheduledPrompt> prompts;
  // Continue this clip instead of starting from noise: its last 4(K − 1) + 1 frames (fewer
  // if it is shorter; rounded down to 4j + 1) are resized to the session's size (as `image`
  // is, with request.image_resize), encoded, and used as the first window's context. Its
  // frames are not repeated in the output. An I2V model takes the source's last frame for its
  // CLIP features (Wan 2.1) and checks, so give no image with a source.
  std::optional<Video> source;
};

struct VideoChunk {
  int index = 0;            // 0-based chunk number
  Video video;              // the new frames, RGB24, at the session's fps
  int64_t first_frame = 0;  // index of video's first frame among all frames this session made
  Tensor frames;            // f32 [m, H, W, 3] in [0, 1], when request.keep_float_frames
  // The window's final latents [C, F, h, w] f32 (normalised, as GenerateResult::latents), the
  // context frames first: latents[:, :context_frames] equal the previous window's last frames.
  Tensor latents;
  int context_frames = 0;   // 0 for the first chunk of a new clip
  std::string prompt;       // the prompt the window used ("" with embeddings)
  std::vector<std::string> notices;
  std::vector<StageTime> timings;
  bool completes_cancelled_chunk = false;  // this call finished a chunk cancelled during decode
};

class REEL_API VideoSession {
 public:
  // Validates every option before any work (invalid_argument naming the field).
  VideoSession(const Pipeline& pipeline, const VideoSessionOptions& options);
  VideoSession(VideoSession&&) noexcept;
  VideoSession& operator=(VideoSession&&) noexcept;
  ~VideoSession();

  // Generates and decodes the next chunk. `prompt` (when given) replaces the scheduled
  // prompt for this chunk only.
  VideoChunk next(GenerateObserver* observer = nullptr);
  VideoChunk next(std::string_view prompt, GenerateObserver* observer = nullptr);

  int width() const;
  int height() const;
  double fps() const;
  int window_latent_frames() const;  // F
  int context_frames() const;        // K
  ContextConditioning conditioning() const;  // automatic resolved
  int chunks_done() const;
  int64_t frames_done() const;       // frames handed out so far
  // Frames the first n chunks give (n >= 0), and the fewest chunks that give at least
  // `frames` frames / `seconds` of video.
  int64_t frames_after(int chunks) const;
  int chunks_for_frames(int64_t frames) const;
  int chunks_for_seconds(double seconds) const;
  // Notices from resolving the request (rounded sizes, short source clip).
  const std::vector<std::string>& notices() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace reel
