// Endless video (reel/video_session.hpp) on the tiny models, in f32:
// - a 3-chunk run equals the same computation done by hand from the public modules
//   (WanTransformer, the sampler registry, FlowDenoiser, Rng, WanVae and its decode stream);
// - the first chunk of a new clip is exactly generate();
// - seams: each window's context frames are the previous window's last latent frames, and the
//   streamed frames equal one decode of the whole latent sequence;
// - TI2V-style per-token timesteps, continuing an existing clip, prompt schedules, cancel.
//
// Tolerance: both sides run the same f32 operations in the same order on the same backend;
// they can differ only where the compiler contracts a·b + c into an FMA differently (a few
// ulps, ~1e-7 relative per op) and a few denoising steps of a random model amplify that by at
// most a few hundred: relative L2 <= 1e-5 (measured values are printed; typically 0).
#include "reel/video_session.hpp"

#include <atomic>

#include "pipeline/pipeline_test_util.hpp"
#include "reel/ops.hpp"
#include "reel/rng.hpp"
#include "reel/sampler.hpp"
#include "reel/schedule.hpp"
#include "reel/vae.hpp"
#include "reel/wan_transformer.hpp"

namespace reel::test {
namespace {

namespace fs = std::filesystem;
constexpr double kHandTol = 1e-5;

// ------------------------------------------------------------------ the computation by hand

Tensor frames_of(const Tensor& x, int64_t begin, int64_t end) {  // latent frames [begin, end) of [C, F, h, w]
  const int64_t c = x.dim(0), f = x.dim(1), hw = x.dim(2) * x.dim(3), n = end - begin;
  std::vector<float> all = x.to_floats(), out;
  for (int64_t ch = 0; ch < c; ++ch)
    out.insert(out.end(), all.begin() + (ch * f + begin) * hw, all.begin() + (ch * f + end) * hw);
  return Tensor::from_floats({c, n, x.dim(2), x.dim(3)}, out);
}

Tensor concat_frames(const std::vector<Tensor>& parts) {  // along the frame axis
  const int64_t c = parts[0].dim(0), hw = parts[0].dim(2) * parts[0].dim(3);
  int64_t f = 0;
  for (const Tensor& p : parts) f += p.dim(1);
  std::vector<float> out(size_t(c * f * hw));
  int64_t at = 0;
  for (const Tensor& p : parts) {
    const std::vector<float> v = p.to_floats();
    for (int64_t ch = 0; ch < c; ++ch)
      std::copy_n(v.begin() + ch * p.dim(1) * hw, p.dim(1) * hw, out.begin() + (ch * f + at) * hw);
    at += p.dim(1);
  }
  return Tensor::from_floats({c, f, parts[0].dim(2), parts[0].dim(3)}, out);
}

// VAE output [3, m, H, W] in [-1, 1] → [m, H, W, 3] in [0, 1] as diffusers' postprocess does.
std::vector<double> postprocess(const Tensor& frames) {
  const std::vector<float> v = frames.to_floats();
  const int64_t m = frames.dim(1), plane = frames.dim(2) * frames.dim(3);
  std::vector<double> out(size_t(m * plane * 3));
  for (int64_t i = 0; i < m * plane; ++i)
    for (int64_t c = 0; c < 3; ++c) out[i * 3 + c] = std::clamp(v[c * m * plane + i] / 2.0f + 0.5f, 0.0f, 1.0f);
  return out;
}

// The pieces a window needs, loaded from a model folder on their own. The VAE config (with
// the latent normalisation constants of the folder's config.json; the tiny TI2V model has its
// own) is the one the pipeline read.
struct Modules {
  std::unique_ptr<Backend> be = make_cpu_backend({.threads = 2});
  WanTransformer dit;
  WanVae vae;
  Modules(const fs::path& folder, const Pipeline& pipe) : Modules(folder / "transformer", folder / "vae", pipe) {}
  Modules(const fs::path& transformer, const fs::path& vae_folder, const Pipeline& pipe)
      : dit(WanTransformer::load(transformer, {.precision = WanPrecision::f32})),
        vae(WanVae::load(vae_folder, *be, {.config = pipe.info().vae})) {}
};

struct HandWindow {
  int steps = 3;
  float guidance = 4.0f, shift = 3.0f;
  float boundary = 0, guidance_2 = 0;  // two experts: guidance_2 below timestep `boundary`
  uint64_t seed = 0, stream = 0;
  Shape shape;           // [C, F, h, w]
  Tensor text;           // [2, 512, D]: conditional; unconditional
  Tensor context;        // [C, K, h, w] or undefined
  bool per_token = false;
  Tensor channels;       // I2V: [mask + C, F, h, w] appended to x on channels, or undefined
  Tensor image;          // Wan 2.1 I2V: [2, N, image_dim] CLIP features (both halves), or undefined
};

// One window: noise from Rng(seed, stream); batched CFG v = u + g·(c − u); the context frames
// put into x before every model call (noised to σ, or clean with timestep 0 on their tokens);
// UniPC over the flow_unipc schedule; the context frames set exactly at the end.
Tensor denoise_by_hand(Modules& m, const HandWindow& w) {
  Rng rng(w.seed, w.stream);
  const Tensor noise = rng.normal(w.shape);
  const Schedule sched = make_schedule("flow_unipc:shift=" + std::to_string(w.shift), w.steps);
  const int64_t C = w.shape[0], F = w.shape[1], hw = w.shape[2] * w.shape[3];
  const int64_t K = w.context.defined() ? w.context.dim(1) : 0;
  const int64_t tokens = F * (w.shape[2] / 2) * (w.shape[3] / 2), ctx_tokens = K * (w.shape[2] / 2) * (w.shape[3] / 2);
  ModelFn model = [&](const Tensor& x, float t) {
    std::vector<float> one = x.to_floats();
    int64_t channels = C;
    if (w.channels.defined()) {
      const std::vector<float> extra = w.channels.to_floats();
      one.insert(one.end(), extra.begin(), extra.end());
      channels += w.channels.dim(0);
    }
    std::vector<float> both = one;
    both.insert(both.end(), one.begin(), one.end());
    std::vector<float> ts(2, t);
    if (w.per_token) {
      ts.assign(size_t(2 * tokens), t);
      for (int b = 0; b < 2; ++b) std::fill_n(ts.begin() + b * tokens, ctx_tokens, 0.0f);
    }
    const Tensor in = Tensor::from_floats({2, channels, F, w.shape[2], w.shape[3]}, both);
    const std::vector<float> out =
        m.dit.forward(*m.be, in, ts, w.text, w.image.defined() ? &w.image : nullptr).to_floats();
    const float g = w.boundary > 0 && t < w.boundary ? w.guidance_2 : w.guidance;
    std::vector<float> v(size_t(x.numel()));
    for (size_t i = 0; i < v.size(); ++i) {
      const float c = out[i], u = out[i + v.size()];
      const float d = c - u;
      const float p = g * d;
      v[i] = u + p;
    }
    return Tensor::from_floats(x.shape(), v);
  };
  FlowDenoiser flow(model, schedule_timesteps(sched));
  // A denoiser that puts the context in first.
  struct WithContext final : Denoiser {
    FlowDenoiser& inner;
    const HandWindow& w;
    const Tensor& noise;
    int64_t C, F, K, hw;
    WithContext(FlowDenoiser& i, const HandWindow& win, const Tensor& n, int64_t c, int64_t f, int64_t k, int64_t h)
        : inner(i), w(win), noise(n), C(c), F(f), K(k), hw(h) {}
    NoisePath path() const override { return NoisePath::flow; }
    float timestep(float s) const override { return inner.timestep(s); }
    Denoised denoise(const Tensor& x, float sigma) override {
      std::vector<float> v = x.to_floats();
      const std::vector<float> c = w.context.to_floats(), e = noise.to_floats();
      for (int64_t ch = 0; ch < C; ++ch)
        for (int64_t i = 0; i < K * hw; ++i) {
          const float ci = c[ch * K * hw + i];
          if (w.per_token) {
            v[ch * F * hw + i] = ci;
          } else {
            const float a = (1.0f - sigma) * ci;
            const float b = sigma * e[ch * F * hw + i];
            v[ch * F * hw + i] = a + b;
          }
        }
      return inner.denoise(Tensor::from_floats(x.shape(), v), sigma);
    }
  };
  WithContext den(flow, w, noise, C, F, K, hw);
  NoObserver quiet;
  auto sampler = make_sampler("unipc");
  Tensor x = K ? sampler->sample(den, noise, sched.sigmas, rng, quiet) : sampler->sample(flow, noise, sched.sigmas, rng, quiet);
  if (K) {
    std::vector<float> v = x.to_floats();
    const std::vector<float> c = w.context.to_floats();
    for (int64_t ch = 0; ch < C; ++ch) std::copy_n(c.begin() + ch * K * hw, K * hw, v.begin() + ch * F * hw);
    x = Tensor::from_floats(x.shape(), v);
  }
  return x;
}

// [2, 512, D] = the pipeline's umT5 output for prompt and negative prompt.
Tensor text_pair(const Pipeline& pipe, const std::string& prompt, const std::string& negative) {
  const std::vector<std::string> both = {prompt, negative};
  return pipe.encode_prompts(both);
}

double rel(const Tensor& a, const Tensor& b) { return relative_l2(to_doubles(a), to_doubles(b)); }
double rel(const Tensor& a, const std::vector<double>& b) { return relative_l2(to_doubles(a), b); }

VideoSessionOptions t2v_options() {
  VideoSessionOptions o;
  o.request.prompt = "a red fox in the snow";
  o.request.negative_prompt = "blurred";
  o.request.width = 64, o.request.height = 32, o.request.frames = 9, o.request.steps = 3;
  o.request.guidance = 4.0f, o.request.seed = 21;
  o.request.keep_float_frames = true;
  o.context_frames = 1;
  return o;
}

// ------------------------------------------------------------------ tests

TEST(VideoSession, ThreeChunksEqualTheComputationByHand) {
  const Pipeline& pipe = tiny_t2v_f32();
  VideoSessionOptions o = t2v_options();
  o.context_frames = 2;  // windows of 3 latent frames: 2 fixed, 1 new
  o.prompts = parse_prompt_schedule("0 a red fox in the snow\n1: the fox jumps over a log\n");
  VideoSession session(pipe, o);
  EXPECT_EQ(session.conditioning(), ContextConditioning::replacement);  // Wan 2.1 T2V: no per-token timesteps
  std::vector<VideoChunk> chunks;
  for (int k = 0; k < 3; ++k) chunks.push_back(session.next());

  Modules m(tiny_t2v_model(), pipe);
  const Tensor text_a = text_pair(pipe, "a red fox in the snow", "blurred");
  const Tensor text_b = text_pair(pipe, "the fox jumps over a log", "blurred");
  HandWindow w;
  w.seed = 21, w.shape = {16, 3, 4, 8};
  VaeDecodeStream stream = m.vae.decode_stream();
  Tensor context;
  for (int k = 0; k < 3; ++k) {
    w.stream = uint64_t(k) << 32;
    w.text = k == 0 ? text_a : text_b;
    w.context = context;
    const Tensor latents = denoise_by_hand(m, w);
    const Tensor fresh = k == 0 ? latents : frames_of(latents, 2, 3);
    const Tensor frames = stream.push(denormalize_latents(*m.be, fresh, m.vae.config()));
    const VideoChunk& c = chunks[size_t(k)];
    const double el = rel(c.latents, latents), ef = rel(c.frames, postprocess(frames));
    std::printf("chunk %d: relative L2 latents %.3g, frames %.3g\n", k, el, ef);
    EXPECT_LE(el, kHandTol);
    EXPECT_LE(ef, kHandTol);
    EXPECT_EQ(c.index, k);
    EXPECT_EQ(c.context_frames, k == 0 ? 0 : 2);
    EXPECT_EQ(c.video.frames, k == 0 ? 9 : 4);
    EXPECT_EQ(c.prompt, k == 0 ? "a red fox in the snow" : "the fox jumps over a log");
    context = frames_of(c.latents, 1, 3);  // carry the session's own latents: each window checked alone
  }
  EXPECT_EQ(session.frames_done(), 17);
  EXPECT_EQ(session.frames_after(3), 17);
}

TEST(VideoSession, FirstChunkOfANewClipIsGenerate) {
  const Pipeline& pipe = tiny_t2v_f32();
  const VideoSessionOptions o = t2v_options();
  VideoSession session(pipe, o);
  const VideoChunk c = session.next();
  const GenerateResult g = pipe.generate(o.request);
  // The same stages on the same inputs: bit for bit.
  EXPECT_EQ(c.latents.to_floats(), g.latents.to_floats());
  EXPECT_EQ(c.video.rgb, g.video.rgb);
  EXPECT_EQ(c.frames.to_floats(), g.frames.to_floats());
  EXPECT_DOUBLE_EQ(c.video.fps, g.video.fps);
}

TEST(VideoSession, SeamsContextFramesAreThePreviousLastFramesAndStreamingEqualsOneDecode) {
  const Pipeline& pipe = tiny_t2v_f32();
  VideoSessionOptions o = t2v_options();
  o.request.frames = 13;  // 4 latent frames per window
  o.context_frames = 2;
  VideoSession session(pipe, o);
  std::vector<Tensor> sequence;
  std::vector<float> streamed;
  Tensor previous;
  int64_t next_frame = 0;
  for (int k = 0; k < 4; ++k) {
    const VideoChunk c = session.next();
    ASSERT_EQ(c.latents.dim(1), 4);
    if (k > 0) {  // the context frames of chunk k are the last frames of chunk k − 1, exactly
      EXPECT_EQ(frames_of(c.latents, 0, 2).to_floats(), frames_of(previous, 2, 4).to_floats()) << "chunk " << k;
      EXPECT_EQ(c.context_frames, 2);
    }
    sequence.push_back(k == 0 ? c.latents : frames_of(c.latents, 2, 4));
    EXPECT_EQ(c.first_frame, next_frame);
    EXPECT_EQ(c.video.frames, k == 0 ? 13 : 8);
    next_frame += c.video.frames;
    const std::vector<float> f = c.frames.to_floats();
    streamed.insert(streamed.end(), f.begin(), f.end());
    previous = c.latents;
  }
  EXPECT_EQ(next_frame, session.frames_after(4));
  // Decoding the whole latent sequence at once gives the frames the session streamed: the
  // causal cache carried over, so there is no decoding seam between chunks.
  Modules m(tiny_t2v_model(), pipe);
  const Tensor all = concat_frames(sequence);
  const Tensor whole = m.vae.decode(denormalize_latents(*m.be, all, m.vae.config()));
  ASSERT_EQ(whole.dim(1), next_frame);
  const double e = relative_l2(std::vector<double>(streamed.begin(), streamed.end()), postprocess(whole));
  std::printf("streamed vs one decode of %lld latent frames: relative L2 %.3g\n", (long long)all.dim(1), e);
  EXPECT_LE(e, kHandTol);
}

TEST(VideoSession, Ti2vPerTokenContextMatchesTheComputationByHand) {
  const fs::path folder = pipeline_fixtures() / "tiny-wan-ti2v";
  const Pipeline& pipe =
      shared_pipeline("ti2v_f32", {.folder = folder, .threads = 2, .precision = PipelinePrecision::f32});
  VideoSessionOptions o;
  o.request.prompt_embeds = padded_embeds(fixture_tensor("ti2v.safetensors", "embeds"));
  o.request.negative_embeds = padded_embeds(fixture_tensor("ti2v.safetensors", "negative_embeds"));
  o.request.image = read_image(pipeline_fixtures() / "first_frame.png");
  o.request.width = 64, o.request.height = 32, o.request.frames = 9, o.request.steps = 3;
  o.request.guidance = 4.0f, o.request.seed = 3, o.request.keep_float_frames = true;
  o.context_frames = 2;
  VideoSession session(pipe, o);
  EXPECT_EQ(session.conditioning(), ContextConditioning::per_token);
  const VideoChunk c0 = session.next();
  const VideoChunk c1 = session.next();
  // The first chunk is image-to-video exactly as generate() does it.
  const GenerateResult g = pipe.generate(o.request);
  EXPECT_EQ(c0.latents.to_floats(), g.latents.to_floats());

  Modules m(folder, pipe);
  HandWindow w;
  w.seed = 3, w.stream = uint64_t(1) << 32, w.shift = pipe.info().defaults.shift;
  w.shape = {48, 3, 2, 4};
  w.per_token = true;
  const Tensor& pe = o.request.prompt_embeds;
  const Tensor cond = pe.reshape({1, pe.dim(0), pe.dim(1)}), neg = o.request.negative_embeds.reshape({1, pe.dim(0), pe.dim(1)});
  w.text = ops::concat(*m.be, {&cond, &neg}, 0);
  w.context = frames_of(c0.latents, 1, 3);
  const Tensor latents = denoise_by_hand(m, w);
  VaeDecodeStream stream = m.vae.decode_stream();
  (void)stream.push(denormalize_latents(*m.be, c0.latents, m.vae.config()));
  const Tensor frames = stream.push(denormalize_latents(*m.be, frames_of(latents, 2, 3), m.vae.config()));
  const double el = rel(c1.latents, latents), ef = rel(c1.frames, postprocess(frames));
  std::printf("ti2v chunk 1: relative L2 latents %.3g, frames %.3g\n", el, ef);
  EXPECT_LE(el, kHandTol);
  EXPECT_LE(ef, kHandTol);
  EXPECT_EQ(c1.video.frames, 4);
  EXPECT_DOUBLE_EQ(c1.video.fps, 24.0);
}

// I2V's channels by hand: mask 1 on the first n pixel frames (frame 0 four times, then four
// frames per latent frame) and the normalised latents of [pixels, zeros].
Tensor i2v_channels_by_hand(Modules& m, const Tensor& pixels, int frames, int64_t latent_frames) {
  const int64_t n = pixels.dim(1), H = pixels.dim(2), W = pixels.dim(3), plane = H * W;
  std::vector<float> video(size_t(3 * frames * plane), 0.0f);
  const std::vector<float> px = pixels.to_floats();
  for (int64_t c = 0; c < 3; ++c) std::copy_n(px.begin() + c * n * plane, n * plane, video.begin() + c * frames * plane);
  const Tensor z = normalize_latents(*m.be, m.vae.encode(Tensor::from_floats({3, frames, H, W}, video)), m.vae.config());
  const int64_t lh = z.dim(2), lw = z.dim(3), lplane = lh * lw;
  std::vector<float> out(size_t((4 + z.dim(0)) * latent_frames * lplane), 0.0f);
  for (int64_t c = 0; c < 4; ++c)
    for (int64_t j = 0; j < latent_frames; ++j) {
      const int64_t frame = j == 0 ? 0 : 4 * (j - 1) + 1 + c;
      if (frame < n) std::fill_n(out.begin() + (c * latent_frames + j) * lplane, lplane, 1.0f);
    }
  const std::vector<float> zv = z.to_floats();
  std::copy(zv.begin(), zv.end(), out.begin() + 4 * latent_frames * lplane);
  return Tensor::from_floats({4 + z.dim(0), latent_frames, lh, lw}, out);
}

TEST(VideoSession, I2vWindowsAreConditionedOnTheFramesBeforeThem) {
  const Pipeline& pipe = tiny_i2v_f32();
  VideoSessionOptions o = t2v_options();
  o.request.frames = 13;  // 4 latent frames per window: 2 fixed, 2 new
  o.request.image = read_image(pipeline_fixtures() / "i2v_first_frame.png");
  o.request.image_context = fixture_tensor("i2v.safetensors", "image_embeds");
  o.context_frames = 2;
  VideoSession session(pipe, o);
  EXPECT_EQ(session.conditioning(), ContextConditioning::replacement);
  const VideoChunk c0 = session.next();
  const VideoChunk c1 = session.next();
  // The first chunk is image-to-video exactly as generate() does it.
  const GenerateResult g = pipe.generate(o.request);
  EXPECT_EQ(c0.latents.to_floats(), g.latents.to_floats());
  EXPECT_EQ(c0.video.rgb, g.video.rgb);

  // Chunk 1 by hand: the context frames noised to σ, the channels built from the last 5 frames
  // of chunk 0 as decoded, the same CLIP features.
  Modules m(pipeline_fixtures() / "tiny-wan-i2v" / "transformer", tiny_t2v_model() / "vae", pipe);
  VaeDecodeStream stream = m.vae.decode_stream();
  const Tensor decoded0 = stream.push(denormalize_latents(*m.be, c0.latents, m.vae.config()));  // [3, 13, H, W]
  ASSERT_EQ(decoded0.dim(1), 13);
  const std::vector<float> d = decoded0.to_floats();
  const int64_t plane = 32 * 64;
  std::vector<float> tail;
  for (int64_t c = 0; c < 3; ++c) tail.insert(tail.end(), d.begin() + (c * 13 + 8) * plane, d.begin() + (c * 13 + 13) * plane);
  HandWindow w;
  w.seed = 21, w.stream = uint64_t(1) << 32, w.shift = pipe.info().defaults.shift;
  w.shape = {16, 4, 4, 8};
  w.text = text_pair(pipe, o.request.prompt, o.request.negative_prompt);
  w.context = frames_of(c0.latents, 2, 4);
  w.channels = i2v_channels_by_hand(m, Tensor::from_floats({3, 5, 32, 64}, tail), 13, 4);
  const Tensor features = o.request.image_context.reshape({1, o.request.image_context.dim(0), o.request.image_context.dim(1)});
  w.image = ops::concat(*m.be, {&features, &features}, 0);
  const Tensor latents = denoise_by_hand(m, w);
  const Tensor frames = stream.push(denormalize_latents(*m.be, frames_of(latents, 2, 4), m.vae.config()));
  const double el = rel(c1.latents, latents), ef = rel(c1.frames, postprocess(frames));
  std::printf("i2v chunk 1: relative L2 latents %.3g, frames %.3g\n", el, ef);
  EXPECT_LE(el, kHandTol);
  EXPECT_LE(ef, kHandTol);
  EXPECT_EQ(c1.context_frames, 2);
  EXPECT_EQ(c1.video.frames, 8);
  // Without the channels the window comes out different: they are what conditions it.
  w.channels = i2v_channels_by_hand(m, Tensor::from_floats({3, 5, 32, 64}, std::vector<float>(tail.size(), 0.0f)), 13, 4);
  EXPECT_GT(rel(c1.latents, denoise_by_hand(m, w)), 1e-3);
}

TEST(VideoSession, I2vContinuesASourceClip) {
  const Pipeline& pipe = tiny_i2v_f32();
  VideoSessionOptions o = t2v_options();
  o.request.image_context = fixture_tensor("i2v.safetensors", "image_embeds");
  o.context_frames = 2;
  const GenerateResult first = [&] {
    GenerateRequest r = o.request;
    r.image = read_image(pipeline_fixtures() / "i2v_first_frame.png");
    return pipe.generate(r);
  }();
  o.source = first.video;
  VideoSession session(pipe, o);
  const VideoChunk c0 = session.next();
  const VideoChunk c1 = session.next();
  EXPECT_EQ(c0.context_frames, 2);
  EXPECT_EQ(c0.video.frames, 4);
  EXPECT_EQ(c1.video.frames, 4);
  EXPECT_EQ(session.frames_done(), 8);
}

TEST(VideoSession, ContinuesAnExistingClipFromItsLastFrames) {
  const Pipeline& pipe = tiny_t2v_f32();
  // The clip to continue: 13 frames of a generation.
  VideoSessionOptions o = t2v_options();
  GenerateRequest first = o.request;
  first.frames = 13;
  const Video source = pipe.generate(first).video;

  o.context_frames = 2;
  o.source = source;
  o.request.seed = 99;
  VideoSession session(pipe, o);
  const VideoChunk c = session.next();
  EXPECT_EQ(c.context_frames, 2);
  EXPECT_EQ(c.video.frames, 4);  // window 3 latent frames, 2 of them context
  EXPECT_EQ(session.frames_after(1), 4);

  // By hand: the last 5 frames → VAE encode → normalised context; the decoder primed with it.
  Modules m(tiny_t2v_model(), pipe);
  Tensor pixels = Tensor::empty({3, 5, 32, 64}, DType::f32);
  for (int t = 0; t < 5; ++t) {
    const Image im{64, 32, std::vector<uint8_t>(source.frame(8 + t), source.frame(8 + t) + source.frame_bytes())};
    const std::vector<float> f = image_to_tensor(im).to_floats();
    for (int ch = 0; ch < 3; ++ch)
      std::copy_n(f.begin() + ch * 2048, 2048, pixels.data<float>() + (ch * 5 + t) * 2048);
  }
  const Tensor ctx = normalize_latents(*m.be, m.vae.encode(pixels), m.vae.config());
  EXPECT_LE(rel(frames_of(c.latents, 0, 2), ctx), kHandTol);
  HandWindow w;
  w.seed = 99, w.stream = 0, w.shape = {16, 3, 4, 8};
  w.text = text_pair(pipe, o.request.prompt, o.request.negative_prompt);
  w.context = ctx;
  const Tensor latents = denoise_by_hand(m, w);
  VaeDecodeStream stream = m.vae.decode_stream();
  const Tensor primed = stream.push(denormalize_latents(*m.be, ctx, m.vae.config()));
  EXPECT_EQ(primed.dim(1), 5);  // the source's own frames, reconstructed (dropped)
  const Tensor frames = stream.push(denormalize_latents(*m.be, frames_of(latents, 2, 3), m.vae.config()));
  const double el = rel(c.latents, latents), ef = rel(c.frames, postprocess(frames));
  std::printf("continued clip: relative L2 latents %.3g, frames %.3g\n", el, ef);
  EXPECT_LE(el, kHandTol);
  EXPECT_LE(ef, kHandTol);

  // A source shorter than 4(K − 1) + 1 frames gives fewer context frames, and says so.
  VideoSessionOptions shorter = o;
  Video three = source;
  three.frames = 3;
  three.rgb.resize(3 * three.frame_bytes());
  shorter.source = three;
  VideoSession s2(pipe, shorter);
  ASSERT_EQ(s2.notices().size(), 1u);
  EXPECT_NE(s2.notices()[0].find("1 context latent frame"), std::string::npos) << s2.notices()[0];
  EXPECT_EQ(s2.frames_after(1), 8);
  EXPECT_EQ(s2.frames_after(2), 12);
  const VideoChunk s2c = s2.next();
  EXPECT_EQ(s2c.context_frames, 1);
  EXPECT_EQ(s2c.video.frames, 8);
}

// A Wan 2.2 A14B-style folder (the tiny model twice, boundary 0.8): the expert switch and its
// guidance_2 apply in every window, as in generate().
TEST(VideoSession, TwoExpertsSwitchInEveryWindow) {
  const fs::path dir = make_tiny_a14b_folder(tmp_dir() / "tiny-a14b-session");
  const Pipeline pipe = Pipeline::load({.folder = dir, .threads = 2, .precision = PipelinePrecision::f32});
  ASSERT_TRUE(pipe.info().two_experts);
  VideoSessionOptions o = t2v_options();
  o.request.steps = 4;  // UniPC timesteps 999, 900, 750, 501 (shift 3): two at or above 800
  o.request.guidance_2 = 1.5f;
  VideoSession session(pipe, o);
  const VideoChunk c0 = session.next();
  const VideoChunk c1 = session.next();
  EXPECT_EQ(c0.latents.to_floats(), pipe.generate(o.request).latents.to_floats());

  Modules m(tiny_t2v_model(), pipe);  // transformer_2 is a copy: one set of weights serves both
  HandWindow w;
  w.steps = 4, w.seed = 21, w.stream = uint64_t(1) << 32, w.shape = {16, 3, 4, 8};
  w.boundary = 800.0f, w.guidance_2 = 1.5f;
  w.text = text_pair(pipe, o.request.prompt, o.request.negative_prompt);
  w.context = frames_of(c0.latents, 2, 3);
  const double e = rel(c1.latents, denoise_by_hand(m, w));
  std::printf("two experts, chunk 1: relative L2 latents %.3g\n", e);
  EXPECT_LE(e, kHandTol);
  w.guidance_2 = w.guidance;  // and the switch matters
  EXPECT_GT(rel(c1.latents, denoise_by_hand(m, w)), 1e-3);
  fs::remove_all(dir);
}

TEST(VideoSession, PromptScheduleInSecondsAndPerCallPrompts) {
  const Pipeline& pipe = tiny_t2v_f32();
  VideoSessionOptions o = t2v_options();
  o.request.steps = 1;
  o.request.keep_float_frames = false;
  // 16 fps; chunk 0 holds frames 0..8, chunk 1 starts at frame 9 (0.5625 s), chunk 2 at 13 (0.8125 s).
  o.context_frames = 2;
  o.prompts = parse_prompt_schedule("# a schedule\n\n0s: a fox\n0.8s a fox jumps\n");
  VideoSession session(pipe, o);
  EXPECT_EQ(session.next().prompt, "a fox");
  EXPECT_EQ(session.next().prompt, "a fox");
  EXPECT_EQ(session.next("a fox sleeps").prompt, "a fox sleeps");  // this chunk only
  EXPECT_EQ(session.next().prompt, "a fox jumps");
  EXPECT_EQ(session.chunks_done(), 4);
  EXPECT_EQ(session.chunks_for_frames(9), 1);
  EXPECT_EQ(session.chunks_for_frames(10), 2);
  EXPECT_EQ(session.chunks_for_seconds(60.0), 1 + (960 - 9 + 3) / 4);  // 960 frames
}

TEST(VideoSession, CancelledChunksResumeWithTheSameFrames) {
  const Pipeline& pipe = tiny_t2v_f32();
  VideoSessionOptions o = t2v_options();
  o.request.frames = 13;
  o.context_frames = 1;
  VideoSession plain(pipe, o);
  std::vector<VideoChunk> want;
  for (int k = 0; k < 3; ++k) want.push_back(plain.next());

  VideoSession session(pipe, o);
  (void)session.next();
  Recorder denoise_cancel;
  denoise_cancel.cancel_stage = "denoise", denoise_cancel.cancel_step = 2;
  EXPECT_THROW(session.next(&denoise_cancel), Error);
  EXPECT_EQ(session.chunks_done(), 1);
  const VideoChunk c1 = session.next();  // redone from the same noise
  EXPECT_EQ(c1.index, 1);
  EXPECT_EQ(c1.video.rgb, want[1].video.rgb);

  Recorder decode_cancel;
  decode_cancel.cancel_stage = "decode", decode_cancel.cancel_step = 1;
  try {
    (void)session.next(&decode_cancel);
    ADD_FAILURE() << "expected cancelled";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::cancelled);
  }
  EXPECT_EQ(session.chunks_done(), 2);
  const VideoChunk c2 = session.next();  // finishes chunk 2: all its frames, in order
  EXPECT_EQ(c2.index, 2);
  EXPECT_TRUE(c2.completes_cancelled_chunk);
  EXPECT_EQ(c2.video.frames, 12);
  EXPECT_EQ(c2.video.rgb, want[2].video.rgb);
  EXPECT_EQ(c2.first_frame, want[2].first_frame);
  EXPECT_EQ(session.chunks_done(), 3);

  std::atomic<bool> flag{true};
  VideoSessionOptions flagged = o;
  flagged.request.cancel = &flag;
  VideoSession stopped(pipe, flagged);
  EXPECT_THROW(stopped.next(), Error);
  flag = false;
  EXPECT_EQ(stopped.next().video.rgb, want[0].video.rgb);
}

TEST(VideoSession, RejectsWhatCannotWork) {
  const Pipeline& pipe = tiny_t2v_f32();
  auto expect = [&](StatusCode code, const std::string& needle, const VideoSessionOptions& o) {
    try {
      VideoSession s(pipe, o);
      ADD_FAILURE() << "expected " << status_name(code) << " mentioning " << needle;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), code) << e.what();
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  VideoSessionOptions o = t2v_options();
  o.context_frames = 3;
  expect(StatusCode::invalid_argument, "context_frames must be in [1, 2]", o);
  o.context_frames = 0;
  expect(StatusCode::invalid_argument, "context_frames", o);
  o = t2v_options();
  o.request.frames = 1;
  expect(StatusCode::invalid_argument, "at least 5 frames", o);
  o = t2v_options();
  o.prompts = {{1, false, "b", {}}, {1, false, "c", {}}};
  expect(StatusCode::invalid_argument, "prompts[1]: starts must increase", o);
  o.prompts = {{0, false, "b", {}}, {1, true, "c", {}}};
  expect(StatusCode::invalid_argument, "mixes", o);
  o.prompts = {{0, false, "", Tensor::zeros({4, 7}, DType::f32)}};
  expect(StatusCode::invalid_argument, "prompts[0].embeds [4, 7]", o);
  o = t2v_options();
  o.source = Video::blank(5, 32, 64, 16.0);
  o.request.initial_noise = Tensor::zeros({16, 3, 4, 8}, DType::f32);
  expect(StatusCode::invalid_argument, "initial_noise", o);
  o.request.initial_noise = Tensor();
  o.source->rgb.pop_back();
  expect(StatusCode::invalid_argument, "rgb holds", o);

  // An I2V model starts from an image or a source clip, not both.
  const Pipeline& i2v = tiny_i2v_f32();
  try {
    VideoSession s(i2v, t2v_options());
    ADD_FAILURE() << "expected invalid_argument";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("needs a first frame"), std::string::npos) << e.what();
  }
  o = t2v_options();
  o.request.image = read_image(pipeline_fixtures() / "i2v_first_frame.png");
  o.source = Video::blank(5, 32, 64, 16.0);
  try {
    VideoSession s(i2v, o);
    ADD_FAILURE() << "expected invalid_argument";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("not both"), std::string::npos) << e.what();
  }
  // TI2V fixture without a text encoder: text prompts in the schedule cannot work.
  const Pipeline& ti2v = shared_pipeline(
      "ti2v_f32", {.folder = pipeline_fixtures() / "tiny-wan-ti2v", .threads = 2, .precision = PipelinePrecision::f32});
  VideoSessionOptions t = t2v_options();
  t.request.prompt_embeds = padded_embeds(fixture_tensor("ti2v.safetensors", "embeds"));
  t.request.negative_embeds = padded_embeds(fixture_tensor("ti2v.safetensors", "negative_embeds"));
  t.prompts = parse_prompt_schedule("2 a door opens");
  try {
    VideoSession s(ti2v, t);
    ADD_FAILURE() << "expected invalid_argument";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("no text encoder"), std::string::npos) << e.what();
  }
}

TEST(PromptSchedule, ParsesChunksAndSecondsAndNamesTheBadLine) {
  const auto s = parse_prompt_schedule("0 walk down the corridor\n  3:open the door  \n# done\n");
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].start, 0.0);
  EXPECT_FALSE(s[0].in_seconds);
  EXPECT_EQ(s[0].prompt, "walk down the corridor");
  EXPECT_EQ(s[1].start, 3.0);
  EXPECT_EQ(s[1].prompt, "open the door");
  const auto t = parse_prompt_schedule("0s a\n7.5s: b");
  ASSERT_EQ(t.size(), 2u);
  EXPECT_TRUE(t[1].in_seconds);
  EXPECT_EQ(t[1].start, 7.5);
  EXPECT_EQ(t[1].prompt, "b");
  auto bad = [](const std::string& text, const std::string& needle) {
    try {
      (void)parse_prompt_schedule(text, "plan.txt");
      ADD_FAILURE() << "expected an error for " << text;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), StatusCode::invalid_argument);
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  bad("walk", "plan.txt line 1");
  bad("0 a\n\n0 b", "plan.txt line 3: starts must increase");
  bad("0 a\n1s b", "mixes");
  bad("1.5 a", "whole number");
  bad("2:", "prompt is empty");
  bad("2x a", "space");
  bad("# nothing\n", "holds no prompts");
}

}  // namespace
}  // namespace reel::test
