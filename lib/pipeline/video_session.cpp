// reel::VideoSession: endless video. Each chunk resolves its prompt, denoises a window whose
// first K latent frames are held to the previous window's last K (the first chunk of a new clip
// is exactly generate()'s window; both run pipeline::denoise), then pushes the new latent
// frames one at a time through a VAE decode stream whose causal cache carries over from chunk
// to chunk. The session holds only
// the context latents, the VAE cache, the current text context and (after a cancel during
// decoding) one chunk's undelivered frames, so its memory does not grow with the clip. On I2V
// models each later window is also conditioned, as the first is on the image, on the last
// 4(K − 1) + 1 frames decoded so far (and Wan 2.1's CLIP features of the first image).
#include <chrono>
#include <cmath>
#include <cstring>
#include <deque>

#include "pipeline/pipeline_impl.hpp"

namespace reel {

using namespace pipeline;

namespace {

// Latent frames [begin, end) of x [C, F, h, w] as a new tensor.
Tensor latent_frames(const Tensor& x, int64_t begin, int64_t end) {
  const int64_t c = x.dim(0), f = x.dim(1), hw = x.dim(2) * x.dim(3), n = end - begin;
  Tensor out = Tensor::empty({c, n, x.dim(2), x.dim(3)}, DType::f32);
  for (int64_t ch = 0; ch < c; ++ch)
    std::memcpy(out.data<float>() + ch * n * hw, x.data<float>() + (ch * f + begin) * hw, size_t(n * hw) * sizeof(float));
  return out;
}

}  // namespace

struct VideoSession::State {
  State(const Pipeline& pipeline, const VideoSessionOptions& opts) : pipe(pipeline), options(opts) {}

  Pipeline pipe;
  VideoSessionOptions options;  // `source` cleared once encoded
  Resolved rs;
  int window = 0, context = 0;  // F, K
  int first_context = 0;        // K of the first window: 0 for a new clip, else the source's latents
  ContextConditioning mode = ContextConditioning::replacement;
  double fps = 16.0;
  std::vector<std::string> notices;
  std::optional<Video> source_tail;  // the source frames to encode, until the first chunk runs
  std::optional<WanVae> encoder;     // the VAE encoder, when the pipeline loaded only the decoder (T2V)

  // What carries from chunk to chunk.
  int chunk = 0;             // the next chunk's index
  int64_t frames_done = 0;
  Tensor context_latents;    // [C, K, h, w] for the next window; undefined before a new clip's first chunk
  std::optional<VaeDecodeStream> stream;
  // I2V models: the last 4(K − 1) + 1 frames decoded (or of the source), each [3, H, W] in
  // [-1, 1], and Wan 2.1's image context, both conditioning the next window.
  std::deque<std::vector<float>> tail;
  Tensor image_context;
  std::string broken;        // non-empty: a failure left the decode stream in an unknown state

  // The current text context, kept while the prompt stays the same.
  struct TextKey {
    std::string prompt;
    const void* embeds = nullptr;
    bool operator==(const TextKey&) const = default;
  };
  std::optional<TextKey> text_key;
  TextContext text;

  // A chunk cancelled while decoding: its latents still to push, the frames already decoded.
  struct Pending {
    VideoChunk chunk;
    Tensor latents;            // normalised [C, n, h, w]
    int64_t next = 0;          // next latent frame to push
    std::vector<float> floats; // keep_float_frames: [m, H, W, 3] so far
  };
  std::optional<Pending> pending;

  const Pipeline::Impl& impl() const { return pipe.impl(); }

  // Frames the first window gives, and each later one.
  int64_t first_frames() const { return first_context == 0 ? 4LL * (window - 1) + 1 : 4LL * (window - first_context); }
  int64_t later_frames() const { return 4LL * (window - context); }
  int64_t frames_after(int n) const { return n <= 0 ? 0 : first_frames() + int64_t(n - 1) * later_frames(); }

  // The prompt (or embeddings) chunk k uses.
  const ScheduledPrompt* scheduled(int k) const {
    const ScheduledPrompt* found = nullptr;
    const double seconds = double(frames_after(k)) / fps;  // when chunk k's first new frame shows
    for (const ScheduledPrompt& e : options.prompts)
      if (e.in_seconds ? e.start <= seconds + 1e-9 : e.start <= double(k)) found = &e;
    return found;
  }

  void check_usable() const {
    require(broken.empty(), StatusCode::invalid_argument,
            "this video session failed earlier and cannot go on (" + broken +
                "); start a new session that continues the frames written so far");
  }

  const TextContext& text_for(const GenerateRequest& r, Run& run) {
    const TextKey key{r.prompt, r.prompt_embeds.defined() ? r.prompt_embeds.raw() : nullptr};
    if (!text_key || !(*text_key == key)) {
      text_key.reset();
      text = text_context(impl(), r, rs, run);
      text_key = key;
    }
    return text;
  }

  // The source's last frames → the first window's context; primes the decode stream with them.
  void encode_source(Run& run) {
    const Pipeline::Impl& p = impl();
    const Video& src = *source_tail;
    run.begin_stage("encode", 1);
    const auto start = std::chrono::steady_clock::now();
    const int64_t n = src.frames, plane = int64_t(rs.height) * rs.width;
    Tensor pixels = Tensor::empty({3, n, rs.height, rs.width}, DType::f32);
    for (int64_t t = 0; t < n; ++t) {
      Image im{src.width, src.height, std::vector<uint8_t>(src.frame(int(t)), src.frame(int(t)) + src.frame_bytes())};
      if (im.width != rs.width || im.height != rs.height)
        im = resize_image(im, rs.width, rs.height, options.request.image_resize);
      const Tensor f = image_to_tensor(im);  // [3, H, W] in [-1, 1]
      for (int64_t c = 0; c < 3; ++c)
        std::memcpy(pixels.data<float>() + (c * n + t) * plane, f.data<float>() + c * plane, size_t(plane) * sizeof(float));
    }
    if (p.info.variant == WanVariant::i2v) {
      remember_tail(pixels);
      if (p.info.needs_image_context)  // CLIP features of the given ones, or of the source's last frame
        image_context = image_context_of(p, options.request.image_context, *options.request.image);
    }
    const Tensor mu = (encoder ? *encoder : *p.vae).encode(pixels);
    context_latents = host_f32(normalize_latents(*p.backend, mu, p.vae->config()));
    require_finite(context_latents, "the VAE encoder's latents of the source clip");
    run.step_done(1, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    run.end_stage();
    // Prime the decoder's causal cache with the context, one latent frame at a time (as the
    // decode stage pushes); the frames it gives back are the source's own and are dropped.
    try {
      const Tensor zc = host_f32(denormalize_latents(*p.backend, context_latents, p.vae->config()));
      for (int64_t i = 0; i < zc.dim(1); ++i) (void)stream->push(latent_frames(zc, i, i + 1));
    } catch (const std::exception& e) {
      broken = std::string("priming the VAE decode stream failed: ") + e.what();
      throw;
    }
    source_tail.reset();
  }

  // Pushes the pending chunk's remaining latent frames; the chunk is handed out when done.
  VideoChunk decode_pending(Run& run) {
    const Pipeline::Impl& p = impl();
    Pending& pd = *pending;
    const bool keep_float = options.request.keep_float_frames;
    const int64_t n = pd.latents.dim(1);
    run.begin_stage("decode", int(n - pd.next));
    auto last = std::chrono::steady_clock::now();
    for (; pd.next < n;) {
      Tensor frames;
      try {
        const Tensor z = denormalize_latents(*p.backend, latent_frames(pd.latents, pd.next, pd.next + 1),
                                             p.vae->config());
        frames = stream->push(z);  // CPU f32 [3, m, H, W] in [-1, 1]
        require_finite(frames, "the VAE decoder's output (latent frame " + std::to_string(pd.next) + ")");
      } catch (const std::exception& e) {
        broken = std::string("the VAE decode stream failed: ") + e.what();
        throw;
      }
      append(pd, frames, keep_float);
      if (p.info.variant == WanVariant::i2v) remember_tail(frames);
      ++pd.next;
      const auto now = std::chrono::steady_clock::now();
      run.step_done(int(pd.next), std::chrono::duration<double>(now - last).count());  // may cancel
      last = now;
    }
    run.end_stage();
    VideoChunk out = std::move(pd.chunk);
    if (keep_float)
      out.frames = Tensor::from_floats({out.video.frames, out.video.height, out.video.width, 3}, pd.floats);
    for (const StageTime& t : run.timings()) out.timings.push_back(t);
    pending.reset();
    frames_done += out.video.frames;
    return out;
  }

  void append(Pending& pd, const Tensor& frames, bool keep_float) {
    Video& v = pd.chunk.video;
    const int64_t m = frames.dim(1), plane = int64_t(v.height) * v.width;
    const size_t at = v.rgb.size(), fat = pd.floats.size();
    v.rgb.resize(at + size_t(m * plane * 3));
    v.frames += int(m);
    if (keep_float) pd.floats.resize(fat + size_t(m * plane * 3));
    store_frames(frames, v.rgb.data() + at, keep_float ? pd.floats.data() + fat : nullptr);
  }

  // Keeps the last 4(K − 1) + 1 of these frames ([3, m, H, W] in [-1, 1]) and those before.
  void remember_tail(const Tensor& frames) {
    const int64_t m = frames.dim(1), plane = frames.dim(2) * frames.dim(3);
    const size_t keep = size_t(4 * (context - 1) + 1);
    for (int64_t t = std::max<int64_t>(0, m - int64_t(keep)); t < m; ++t) {
      std::vector<float> f(size_t(3 * plane));
      for (int64_t c = 0; c < 3; ++c)
        std::memcpy(f.data() + c * plane, frames.data<float>() + (c * m + t) * plane, size_t(plane) * sizeof(float));
      tail.push_back(std::move(f));
      if (tail.size() > keep) tail.pop_front();
    }
  }

  // The conditioning of a window that continues from `context_latents`: those frames fixed, and
  // on I2V models the channels built from the frames they stand for.
  Conditioning continuation(Run& run) const {
    const Pipeline::Impl& p = impl();
    Conditioning c;
    c.fixed = context_latents;
    c.fixed_mode = mode;
    if (p.info.variant != WanVariant::i2v) return c;
    run.begin_stage("encode", 1);
    const auto start = std::chrono::steady_clock::now();
    const int64_t n = 4 * (context_latents.dim(1) - 1) + 1, plane = int64_t(rs.height) * rs.width;
    require(int64_t(tail.size()) >= n, StatusCode::internal,
            "video session: " + std::to_string(tail.size()) + " frames kept for an I2V window that needs " +
                std::to_string(n));
    Tensor pixels = Tensor::empty({3, n, rs.height, rs.width}, DType::f32);
    for (int64_t t = 0; t < n; ++t) {
      const std::vector<float>& f = tail[tail.size() - size_t(n) + size_t(t)];
      for (int64_t ch = 0; ch < 3; ++ch)
        std::memcpy(pixels.data<float>() + (ch * n + t) * plane, f.data() + ch * plane, size_t(plane) * sizeof(float));
    }
    c.channels = i2v_channels(p, rs, pixels);
    c.image_context = image_context;
    run.step_done(1, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    run.end_stage();
    return c;
  }

  VideoChunk run_chunk(const std::string* prompt_override, GenerateObserver* observer) {
    check_usable();
    if (prompt_override) check_prompt_text(*prompt_override, "prompt");  // before anything changes
    const Pipeline::Impl& p = impl();
    Run run(observer, options.request.cancel, p.comm.get());  // sequence parallel: every rank decodes
    if (pending) {  // finish the chunk a cancel interrupted
      pending->chunk.completes_cancelled_chunk = true;
      return decode_pending(run);
    }
    const int k = chunk;
    VideoChunk out;
    out.index = k;
    if (k == 0)
      for (const std::string& n : notices) run.notice(n, out.notices);
    if (source_tail) encode_source(run);

    // This chunk's request: the shared settings, its prompt, the image only for a new clip's first window.
    GenerateRequest r = options.request;
    if (k > 0 || context_latents.defined()) r.image.reset();
    if (k > 0) r.initial_noise = Tensor();
    if (prompt_override) {
      r.prompt = *prompt_override;
      r.prompt_embeds = Tensor();
    } else if (const ScheduledPrompt* e = scheduled(k)) {
      r.prompt = e->prompt;
      r.prompt_embeds = e->embeds;
    }
    out.prompt = r.prompt_embeds.defined() ? std::string() : r.prompt;
    const TextContext& text = text_for(r, run);

    // A new clip's first window is exactly generate()'s; later ones continue the context.
    const bool fresh = !context_latents.defined();
    const Conditioning cond = fresh ? image_condition(p, r, rs, run) : continuation(run);
    if (fresh && cond.image_context.defined()) image_context = cond.image_context;
    const Tensor latents = denoise(p, r, rs, text, cond, chunk_stream(k), run);
    const int64_t kc = fresh ? 0 : context_latents.dim(1);
    const Tensor to_decode = fresh ? latents : latent_frames(latents, kc, window);
    out.context_frames = int(kc);
    // The window is done: from here on the session has moved to the next chunk.
    context_latents = latent_frames(latents, window - context, window);
    chunk = k + 1;
    out.latents = latents;
    out.first_frame = frames_done;
    out.video.width = rs.width;
    out.video.height = rs.height;
    out.video.fps = fps;
    out.timings = run.timings();
    pending = Pending{std::move(out), to_decode, 0, {}};
    Run decode_run(observer, options.request.cancel);  // the decode stage's timings go with the chunk
    return decode_pending(decode_run);
  }
};

VideoSession::VideoSession(const Pipeline& pipeline, const VideoSessionOptions& options)
    : state_(std::make_unique<State>(pipeline, options)) {
  State& s = *state_;
  const Pipeline::Impl& p = s.impl();
  const PipelineInfo& info = p.info;
  require(p.vae.has_value() && p.vae->has_decoder(), StatusCode::invalid_argument,
          "video extension needs the model's VAE decoder");
  GenerateRequest& r = s.options.request;
  require(!(options.source && r.image), StatusCode::invalid_argument,
          "give either an image (the first frame of a new clip) or a source video to continue, not both");
  // An I2V model continuing a clip takes the source's last frame where it would take the image
  // (for the request's checks and, on Wan 2.1, the CLIP features).
  if (options.source && info.needs_image && options.source->frames > 0) {
    options.source->validate();
    const Video& src = *options.source;
    const uint8_t* last = src.frame(src.frames - 1);
    r.image = Image{src.width, src.height, std::vector<uint8_t>(last, last + src.frame_bytes())};
  }
  s.rs = resolve_request(p, r);
  s.notices = s.rs.notices;
  s.window = int(s.rs.latent_frames);
  s.context = options.context_frames;
  require(s.window >= 2, StatusCode::invalid_argument,
          "a video session needs windows of at least 5 frames (2 latent frames): frames is " +
              std::to_string(s.rs.frames));
  require(s.context >= 1 && s.context < s.window, StatusCode::invalid_argument,
          "context_frames must be in [1, " + std::to_string(s.window - 1) + "] for windows of " +
              std::to_string(s.rs.frames) + " frames (" + std::to_string(s.window) + " latent frames), got " +
              std::to_string(s.context));
  s.mode = options.conditioning != ContextConditioning::automatic
               ? options.conditioning
               : (info.expand_timesteps ? ContextConditioning::per_token : ContextConditioning::replacement);
  s.fps = info.defaults.fps;

  // Prompts: each entry must be usable, and text needs the encoder.
  for (size_t i = 0; i < options.prompts.size(); ++i) {
    const ScheduledPrompt& e = options.prompts[i];
    const std::string who = "prompts[" + std::to_string(i) + "]";
    require(std::isfinite(e.start) && e.start >= 0 && e.start <= (e.in_seconds ? kMaxScheduleSeconds : kMaxScheduleChunk),
            StatusCode::invalid_argument,
            who + ": start must be in [0, " + (e.in_seconds ? "1e7 seconds" : "1000000 chunks") + "]");
    if (i > 0) {
      require(e.in_seconds == options.prompts[i - 1].in_seconds, StatusCode::invalid_argument,
              who + " mixes chunk indices and seconds; use one kind of start throughout");
      require(e.start > options.prompts[i - 1].start, StatusCode::invalid_argument, who + ": starts must increase");
    }
    if (e.embeds.defined()) {
      const Tensor& t = e.embeds;
      const int64_t td = info.transformer.text_dim;
      require((t.rank() == 2 || (t.rank() == 3 && t.dim(0) == 1)) && t.dim(-1) == td && t.is_cpu() &&
                  t.dtype() != DType::i32,
              StatusCode::invalid_argument,
              who + ".embeds " + t.shape().str() + " must be a CPU float tensor [tokens, " + std::to_string(td) + "]");
      require_finite(t, who + ".embeds", StatusCode::invalid_argument);
    } else {
      require(info.can_encode_prompts, StatusCode::invalid_argument,
              who + " is text, but this model has no text encoder and tokenizer loaded: give embeddings");
      check_prompt_text(e.prompt, who + ".prompt");
      note_prompt_length(p, e.prompt, who, s.notices);
    }
  }

  if (options.source) {
    const Video& src = *options.source;
    src.validate();
    require(!r.initial_noise.defined(), StatusCode::invalid_argument,
            "initial_noise is the first window's noise of a new clip; a continued clip draws its noise from the seed");
    // The last 4(K − 1) + 1 frames, fewer when the clip is shorter, rounded down to 4j + 1.
    const int want = 4 * (s.context - 1) + 1;
    const int n = (std::min(src.frames, want) - 1) / 4 * 4 + 1;
    s.first_context = (n - 1) / 4 + 1;
    if (s.first_context < s.context)
      s.notices.push_back("the source clip has " + std::to_string(src.frames) + " frames: the first window has " +
                          std::to_string(s.first_context) + " context latent frame(s) instead of " +
                          std::to_string(s.context));
    if (std::abs(src.fps - s.fps) > 1e-6)
      s.notices.push_back("the source clip runs at " + std::to_string(src.fps) + " fps, the model at " +
                          std::to_string(s.fps) + " fps: new frames come at the model's rate");
    Video tail;
    tail.width = src.width, tail.height = src.height, tail.fps = src.fps, tail.frames = n;
    tail.rgb.assign(src.frame(src.frames - n), src.frame(src.frames - n) + size_t(n) * src.frame_bytes());
    s.source_tail = std::move(tail);
    s.options.source.reset();  // the tail is all the session keeps
    if (!p.vae->has_encoder())  // text-to-video pipelines load only the decoder
      s.encoder.emplace(WanVae::load(p.vae_path, *p.backend,
                                     {.config = info.vae, .compute = DType::f32, .encoder = true, .decoder = false}));
  }
  s.stream.emplace(p.vae->decode_stream());
}

VideoSession::VideoSession(VideoSession&&) noexcept = default;
VideoSession& VideoSession::operator=(VideoSession&&) noexcept = default;
VideoSession::~VideoSession() = default;

VideoChunk VideoSession::next(GenerateObserver* observer) { return state_->run_chunk(nullptr, observer); }
VideoChunk VideoSession::next(std::string_view prompt, GenerateObserver* observer) {
  const std::string p(prompt);
  return state_->run_chunk(&p, observer);
}

int VideoSession::width() const { return state_->rs.width; }
int VideoSession::height() const { return state_->rs.height; }
double VideoSession::fps() const { return state_->fps; }
int VideoSession::window_latent_frames() const { return state_->window; }
int VideoSession::context_frames() const { return state_->context; }
ContextConditioning VideoSession::conditioning() const { return state_->mode; }
int VideoSession::chunks_done() const { return state_->chunk - (state_->pending ? 1 : 0); }
int64_t VideoSession::frames_done() const { return state_->frames_done; }
int64_t VideoSession::frames_after(int chunks) const { return state_->frames_after(chunks); }
const std::vector<std::string>& VideoSession::notices() const { return state_->notices; }

int VideoSession::chunks_for_frames(int64_t frames) const {
  const State& s = *state_;
  if (frames <= 0) return 0;
  if (frames <= s.first_frames()) return 1;
  return int(1 + (frames - s.first_frames() + s.later_frames() - 1) / s.later_frames());
}

int VideoSession::chunks_for_seconds(double seconds) const {
  require(std::isfinite(seconds) && seconds >= 0 && seconds <= 1e7, StatusCode::invalid_argument,
          "duration must be a number of seconds in [0, 1e7], got " + std::to_string(seconds));
  return chunks_for_frames(int64_t(std::ceil(seconds * state_->fps - 1e-9)));
}

}  // namespace reel
