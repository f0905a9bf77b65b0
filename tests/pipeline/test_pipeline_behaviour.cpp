// Pipeline behaviour on the shipped tiny model: batched CFG = two separate passes, rounding
// notices, progress, cancel (callback, flag, from another thread, during decode), seeds,
// several threads on one Pipeline, sampler/schedule overrides, the A14B expert switch.
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <thread>

#include "pipeline/pipeline_impl.hpp"
#include "pipeline/pipeline_test_util.hpp"
#include "reel/attention.hpp"
#include "reel/rng.hpp"
#include "reel/sampler.hpp"
#include "reel/taehv.hpp"
#include "reel/video_io.hpp"

namespace reel::test {
namespace {

namespace fs = std::filesystem;

TEST(PipelineBehaviour, BatchedCfgEqualsTwoSeparatePasses) {
  GenerateRequest r = quick_request();
  r.batch_cfg = true;
  const GenerateResult batched = tiny_t2v_f32().generate(r);
  r.batch_cfg = false;
  const GenerateResult separate = tiny_t2v_f32().generate(r);
  // Same f32 arithmetic per row; only the GEMM blocking over 2 vs 1 batch items may differ
  // (~1e-7 relative per op), so the latents agree to well under 1e-5.
  const double e = relative_l2(to_doubles(batched.latents), to_doubles(separate.latents));
  std::printf("batched vs separate CFG: relative L2 %.3g\n", e);
  EXPECT_LE(e, 1e-5);
}

TEST(PipelineBehaviour, RoundsFramesAndSizesAndSaysSo) {
  GenerateRequest r = quick_request();
  r.width = 70, r.height = 50, r.frames = 8, r.steps = 1;
  Recorder rec;
  const GenerateResult out = tiny_t2v_f32().generate(r, &rec);
  EXPECT_EQ(out.width, 64);
  EXPECT_EQ(out.height, 48);
  EXPECT_EQ(out.frames_count, 9);  // diffusers: 8 // 4 * 4 + 1
  EXPECT_EQ(out.video.width, 64);
  EXPECT_EQ(out.video.height, 48);
  EXPECT_EQ(out.video.frames, 9);
  ASSERT_EQ(out.notices.size(), 3u);
  EXPECT_EQ(rec.notices, out.notices);
  const std::string all = out.notices[0] + "|" + out.notices[1] + "|" + out.notices[2];
  EXPECT_NE(all.find("width 70 -> 64"), std::string::npos) << all;
  EXPECT_NE(all.find("height 50 -> 48"), std::string::npos) << all;
  EXPECT_NE(all.find("frames 8 -> 9"), std::string::npos) << all;

  r.width = 64, r.height = 48, r.frames = 1;  // one frame: an image
  const GenerateResult one = tiny_t2v_f32().generate(r);
  EXPECT_TRUE(one.notices.empty());
  EXPECT_EQ(one.video.frames, 1);
}

TEST(PipelineBehaviour, ReportsEveryStepOfEveryStage) {
  Recorder rec;
  const GenerateResult out = tiny_t2v_f32().generate(quick_request(), &rec);
  std::vector<std::string> seen;
  for (const auto& e : rec.events) seen.push_back(e.stage + " " + std::to_string(e.step) + "/" + std::to_string(e.total));
  const std::vector<std::string> want = {"text 1/1",   "denoise 1/3", "denoise 2/3", "denoise 3/3",
                                         "decode 1/3", "decode 2/3",  "decode 3/3"};
  EXPECT_EQ(seen, want);
  ASSERT_EQ(out.timings.size(), 3u);
  EXPECT_EQ(out.timings[1].stage, "denoise");
  EXPECT_EQ(out.timings[1].steps, 3);
}

TEST(PipelineBehaviour, CancelFromTheCallbackStopsWithinOneStep) {
  for (const std::string stage : {"text", "denoise", "decode"}) {
    Recorder rec;
    rec.cancel_stage = stage;
    rec.cancel_step = stage == "text" ? 1 : 2;
    expect_code(StatusCode::cancelled, [&] { (void)tiny_t2v_f32().generate(quick_request(), &rec); }, stage);
    ASSERT_FALSE(rec.events.empty());
    EXPECT_EQ(rec.events.back().stage, stage);  // nothing ran after the cancel
    EXPECT_EQ(rec.events.back().step, rec.cancel_step);
  }
}

TEST(PipelineBehaviour, CancelFlagSetFromAnotherThread) {
  std::atomic<bool> cancel{false};
  std::mutex m;
  std::condition_variable cv;
  int denoise_steps = 0;
  struct Watch : GenerateObserver {
    std::mutex* m;
    std::condition_variable* cv;
    int* steps;
    bool on_progress(const Progress& p) override {
      if (p.stage == "denoise") {
        std::lock_guard<std::mutex> lock(*m);
        ++*steps;
        cv->notify_all();
      }
      return true;
    }
  } watch;
  watch.m = &m, watch.cv = &cv, watch.steps = &denoise_steps;
  GenerateRequest r = quick_request();
  r.steps = 500;  // far more than run before the flag lands
  r.cancel = &cancel;
  std::thread canceller([&] {
    std::unique_lock<std::mutex> lock(m);
    cv.wait(lock, [&] { return denoise_steps >= 1; });
    cancel = true;
  });
  expect_code(StatusCode::cancelled, [&] { (void)tiny_t2v_f32().generate(r, &watch); });
  canceller.join();
  EXPECT_LT(denoise_steps, 500);
}

TEST(PipelineBehaviour, SeedsAreReproducibleAndAreTheRngNoise) {
  const GenerateResult a = tiny_t2v_f32().generate(quick_request(7));
  const GenerateResult b = tiny_t2v_f32().generate(quick_request(7));
  const GenerateResult c = tiny_t2v_f32().generate(quick_request(8));
  EXPECT_EQ(a.video.rgb, b.video.rgb);
  EXPECT_NE(a.video.rgb, c.video.rgb);
  GenerateRequest r = quick_request(12345);  // the seed is unused when noise is given
  r.initial_noise = Rng(7).normal({16, 3, 6, 8});
  const GenerateResult d = tiny_t2v_f32().generate(r);
  EXPECT_EQ(a.video.rgb, d.video.rgb);
}

TEST(PipelineBehaviour, SeveralThreadsShareOnePipeline) {
  const Pipeline& pipe = tiny_t2v_f32();
  const GenerateResult want1 = pipe.generate(quick_request(1));
  const GenerateResult want2 = pipe.generate(quick_request(2));
  GenerateResult got1, got2;
  std::thread t1([&] { got1 = pipe.generate(quick_request(1)); });
  std::thread t2([&] { got2 = pipe.generate(quick_request(2)); });
  t1.join();
  t2.join();
  std::printf("threads: latents relative L2 %.3g, %.3g\n", relative_l2(to_doubles(got1.latents), to_doubles(want1.latents)),
              relative_l2(to_doubles(got2.latents), to_doubles(want2.latents)));
  EXPECT_EQ(got1.video.rgb, want1.video.rgb);
  EXPECT_EQ(got2.video.rgb, want2.video.rgb);
}

TEST(PipelineBehaviour, SamplerAndScheduleByName) {
  GenerateRequest r = quick_request();
  r.sampler = "euler";
  GenerateResult out = tiny_t2v_f32().generate(r);
  EXPECT_EQ(out.sampler, "euler");
  EXPECT_EQ(out.schedule.rfind("flow_euler:shift=3", 0), 0u) << out.schedule;  // the sampler's usual schedule
  r.sampler = "dpmpp_2m";
  r.shift = 5.0f;
  out = tiny_t2v_f32().generate(r);
  EXPECT_EQ(out.schedule.rfind("flow_dpm:shift=5", 0), 0u) << out.schedule;
  r.sampler = "unipc";
  r.schedule = "karras:sigma_min=0.01,sigma_max=0.99";
  out = tiny_t2v_f32().generate(r);
  ASSERT_EQ(out.notices.size(), 1u);
  EXPECT_NE(out.notices[0].find("shift is ignored"), std::string::npos);
  r.schedule = "";
  r.sampler = "no_such_sampler";
  expect_code(StatusCode::not_found, [&] { (void)tiny_t2v_f32().generate(r); });
  r.sampler = "unipc:ordr=2";
  expect_code(StatusCode::invalid_argument, [&] { (void)tiny_t2v_f32().generate(r); }, "ordr");
}

TEST(PipelineBehaviour, UserRegisteredSamplersAndSchedulesAreFirstClass) {
  // A flow schedule registered from outside takes the request's shift, as the built-in ones do;
  // a sampler registered with its usual schedule gets it when the request names none.
  register_schedule("test_user_flow", "flow_unipc under another name", [](int steps, const Options& o) {
    return flow_unipc_schedule(steps, o.get_double("shift", 1.0), o.get_int("num_train_timesteps", 1000));
  }, /*flow_shift=*/true);
  register_sampler("test_user_euler", "euler under another name",
                   [](const Options&) { return make_sampler("euler"); }, "test_user_flow");
  GenerateRequest r = quick_request();
  r.sampler = "test_user_euler";
  r.shift = 5.0f;
  const GenerateResult mine = tiny_t2v_f32().generate(r);
  EXPECT_EQ(mine.schedule, "test_user_flow:shift=5") << mine.schedule;
  EXPECT_TRUE(mine.notices.empty());
  r.sampler = "euler";
  r.schedule = "flow_unipc:shift=5";
  const GenerateResult builtin = tiny_t2v_f32().generate(r);
  EXPECT_EQ(mine.latents.to_floats(), builtin.latents.to_floats());
  EXPECT_EQ(find_sampler("test_user_euler")->schedule, "test_user_flow");
  EXPECT_EQ(find_sampler("euler")->schedule, "flow_euler");
  EXPECT_TRUE(find_schedule("flow_dpm")->flow_shift);
  EXPECT_FALSE(find_schedule("karras")->flow_shift);
  EXPECT_FALSE(find_sampler("no_such_sampler").has_value());
}

// Live previews: one per denoising step, of the latent grid, only when asked for; they change
// nothing in the result, and stopping from a preview stops the run.
TEST(PipelineBehaviour, PreviewsShowEachDenoisingStep) {
  struct Recorder final : GenerateObserver {
    std::vector<Preview> seen;
    std::vector<std::vector<uint8_t>> pixels;
    int stop_at = 0;
    bool on_preview(const Preview& p) override {
      seen.push_back(p);
      pixels.emplace_back(p.rgb.begin(), p.rgb.end());
      return p.step != stop_at;
    }
  };
  GenerateRequest r = quick_request();
  r.steps = 4;
  Recorder off;
  const GenerateResult plain = tiny_t2v_f32().generate(r, &off);
  EXPECT_TRUE(off.seen.empty());
  r.previews = true;
  Recorder on;
  const GenerateResult shown = tiny_t2v_f32().generate(r, &on);
  EXPECT_EQ(shown.latents.to_floats(), plain.latents.to_floats());
  ASSERT_EQ(on.seen.size(), 4u);
  for (size_t i = 0; i < on.seen.size(); ++i) {
    const Preview& p = on.seen[i];
    EXPECT_EQ(p.step, int(i) + 1);
    EXPECT_EQ(p.total, 4);
    EXPECT_EQ(p.frames, int(shown.latents.dim(1)));
    EXPECT_EQ(p.height, int(shown.latents.dim(2)));
    EXPECT_EQ(p.width, int(shown.latents.dim(3)));
    EXPECT_EQ(on.pixels[i].size(), size_t(p.frames) * p.height * p.width * 3);
  }
  EXPECT_NE(on.pixels[0], on.pixels[3]);  // the estimate sharpens as the steps go
  Recorder stop;
  stop.stop_at = 2;
  expect_code(StatusCode::cancelled, [&] { (void)tiny_t2v_f32().generate(r, &stop); }, "preview");
  EXPECT_EQ(stop.seen.size(), 2u);
}

// With a TAEHV decoder the previews are its pictures of x0 at the frame size, one frame per
// latent frame: with Euler the last step's x0 is the final latents, so the last preview is the
// decoder's picture of what the sampler returns. A decoder for other latents is refused.
TEST(PipelineBehaviour, PreviewsThroughATaehvDecoder) {
  const fs::path taehv16 = fixtures_dir() / "taehv" / "c16.safetensors";
  PipelineLoadOptions o{.folder = tiny_t2v_model(), .threads = 2, .precision = PipelinePrecision::f32};
  o.preview_decoder = taehv16;
  const Pipeline pipe = Pipeline::load(o);
  EXPECT_NE(pipe.info().description.find("TAEHV previews"), std::string::npos) << pipe.info().description;
  struct Last final : GenerateObserver {
    std::vector<Preview> seen;
    std::vector<uint8_t> rgb;
    bool on_preview(const Preview& p) override {
      seen.push_back(p);
      rgb.assign(p.rgb.begin(), p.rgb.end());
      return true;
    }
  } last;
  GenerateRequest r = quick_request();
  r.sampler = "euler", r.steps = 3, r.previews = true;
  const GenerateResult out = pipe.generate(r, &last);
  ASSERT_EQ(last.seen.size(), 3u);
  const Preview& p = last.seen.back();
  EXPECT_EQ(p.frames, int(out.latents.dim(1)));
  EXPECT_EQ(p.height, out.video.height);
  EXPECT_EQ(p.width, out.video.width);
  ASSERT_EQ(last.rgb.size(), size_t(p.frames) * p.height * p.width * 3);
  auto be = make_cpu_backend({.threads = 2});
  const Tensor want = TaehvDecoder::load(taehv16, {.time_upscale = false}).decode(*be, out.latents);
  const int64_t plane = int64_t(p.height) * p.width;
  int worst = 0;
  for (int64_t k = 0; k < p.frames; ++k)
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t i = 0; i < plane; ++i) {
        const int w = pixel_to_u8(want.data<float>()[(k * 3 + c) * plane + i], PixelRange::zero_to_one);
        worst = std::max(worst, std::abs(w - int(last.rgb[size_t((k * plane + i) * 3 + c)])));
      }
  EXPECT_LE(worst, 1) << "the last preview is not the decoder's picture of the final latents";

  o.preview_decoder = fixtures_dir() / "taehv" / "c48.safetensors";
  expect_code(StatusCode::invalid_argument, [&] { (void)Pipeline::load(o); }, "48-channel");
}

// The preview map is a least-squares fit on the model's own VAE: on the trained demo model the
// last step's preview must look more like the decoded clip than a flat picture of its mean
// colour does.
TEST(PipelineBehaviour, PreviewMapFitsTheDemoVae) {
  const Pipeline& demo = shared_pipeline("demo_f32", {.folder = demo_model(), .threads = 2,
                                                       .precision = PipelinePrecision::f32});
  struct Last final : GenerateObserver {
    std::vector<uint8_t> rgb;
    int frames = 0, h = 0, w = 0;
    bool on_preview(const Preview& p) override {
      rgb.assign(p.rgb.begin(), p.rgb.end());
      frames = p.frames, h = p.height, w = p.width;
      return true;
    }
  } last;
  GenerateRequest r;
  r.prompt = "a red ball rolls left on a blue floor";
  r.steps = 8, r.seed = 3, r.previews = true;
  const GenerateResult out = demo.generate(r, &last);
  // The decoded first frame averaged over each latent pixel's block, against the preview's
  // first frame; and against the flat picture of the frame's mean colour (what a preview
  // without any information would score).
  const int s = out.video.width / last.w;
  ASSERT_EQ(last.w * s, out.video.width);
  std::vector<double> blocks;
  double mean[3] = {0, 0, 0};
  for (int y = 0; y < last.h; ++y)
    for (int x = 0; x < last.w; ++x)
      for (int c = 0; c < 3; ++c) {
        double sum = 0;
        for (int u = 0; u < s; ++u)
          for (int v = 0; v < s; ++v) sum += out.video.frame(0)[(size_t(y * s + u) * out.video.width + x * s + v) * 3 + c];
        blocks.push_back(sum / (s * s));
        mean[c] += sum / (s * s) / (last.h * last.w);
      }
  double se = 0, se_flat = 0;
  for (size_t i = 0; i < blocks.size(); ++i) {
    se += std::pow(blocks[i] - last.rgb[i], 2);
    se_flat += std::pow(blocks[i] - mean[i % 3], 2);
  }
  auto psnr = [&](double e) { return 10.0 * std::log10(255.0 * 255.0 / (e / double(blocks.size()))); };
  std::printf("demo preview vs decoded first frame (block means): PSNR %.1f dB (flat mean colour: %.1f dB)\n",
              psnr(se), psnr(se_flat));
  // Measured 18.2 vs 16.5 dB (2026-12-07): the demo VAE is far from linear in a latent pixel
  // (the fit's R² is 0.41 on held-out latents), so this preview is rough; the bound guards it.
  EXPECT_GT(psnr(se), psnr(se_flat) + 1.0);
}

// Variants: each equals generate() with its seed (to the batched-CFG bound), whatever the batch
// size, also with a sampler that draws its own noise; progress covers every group; a cancel
// stops all of them.
TEST(PipelineBehaviour, VariantsEqualGeneratingEachAlone) {
  const std::vector<uint64_t> seeds = {5, 9, 13};
  for (const char* sampler : {"unipc", "euler_a"}) {
    GenerateRequest r = quick_request();
    r.sampler = sampler;
    std::vector<GenerateResult> alone;
    for (uint64_t seed : seeds) {
      r.seed = seed;
      alone.push_back(tiny_t2v_f32().generate(r));
    }
    for (int batch : {0, 2}) {
      Recorder rec;
      const std::vector<GenerateResult> together = tiny_t2v_f32().generate_variants(r, seeds, &rec, batch);
      ASSERT_EQ(together.size(), seeds.size());
      for (size_t i = 0; i < seeds.size(); ++i) {
        const double e = relative_l2(to_doubles(together[i].latents), to_doubles(alone[i].latents));
        std::printf("%s, batch %d, seed %llu: relative L2 to generate() %.3g\n", sampler, batch,
                    static_cast<unsigned long long>(seeds[i]), e);
        EXPECT_LE(e, 1e-5);
        EXPECT_EQ(together[i].seed, seeds[i]);
        EXPECT_EQ(together[i].video.frames, alone[i].video.frames);
      }
      EXPECT_GT(relative_l2(to_doubles(together[0].latents), to_doubles(together[1].latents)), 0.1);  // seeds differ
      int denoise_steps = 0, decodes = 0;
      for (const Recorder::Event& e : rec.events) {
        if (e.stage == "denoise") denoise_steps = std::max(denoise_steps, e.step);
        if (e.stage == "decode" && e.step == e.total) ++decodes;
      }
      EXPECT_EQ(denoise_steps, r.steps * (batch == 2 ? 2 : 1));
      EXPECT_EQ(decodes, 3);
    }
  }
  GenerateRequest r = quick_request();
  Recorder stopper;
  stopper.cancel_stage = "denoise", stopper.cancel_step = 2;
  expect_code(StatusCode::cancelled, [&] { (void)tiny_t2v_f32().generate_variants(r, seeds, &stopper); });
  std::atomic<bool> stop{true};  // set from the start: stops at the first model call of every variant
  r.cancel = &stop;
  expect_code(StatusCode::cancelled, [&] { (void)tiny_t2v_f32().generate_variants(r, seeds, nullptr, 2); });
  r.cancel = nullptr;
  expect_code(StatusCode::invalid_argument, [&] { (void)tiny_t2v_f32().generate_variants(r, {}); }, "seeds");
  r.initial_noise = Tensor::zeros({16, 2, 6, 8}, DType::f32);
  expect_code(StatusCode::invalid_argument, [&] { (void)tiny_t2v_f32().generate_variants(r, seeds); }, "initial_noise");
}

// Batch 0: as many variants at a time as the free memory holds. A CPU memory that reports
// little free makes groups of one, a notice says so, and every variant is still what
// generate() gives; plenty of memory (or a memory that cannot tell) batches them all.
class ReportedFreeMemory final : public DeviceMemory {
 public:
  explicit ReportedFreeMemory(std::optional<size_t> free) : host_(device_memory(DeviceType::cpu)), free_(free) {
    register_device_memory(DeviceType::cpu, this);
  }
  ~ReportedFreeMemory() override { register_device_memory(DeviceType::cpu, &host_); }
  std::shared_ptr<std::byte> allocate(Device d, size_t bytes) override { return host_.allocate(d, bytes); }
  void copy(void* dst, Device dd, const void* src, Device sd, size_t bytes) override { host_.copy(dst, dd, src, sd, bytes); }
  std::optional<size_t> available_bytes(Device) const override { return free_; }

 private:
  DeviceMemory& host_;
  std::optional<size_t> free_;
};

TEST(PipelineBehaviour, VariantsBatchFollowsFreeMemory) {
  EXPECT_EQ(pipeline::variants_per_group(1000, size_t(2600), 8), 2);  // 80 % of 2600 holds two
  EXPECT_EQ(pipeline::variants_per_group(1000, size_t(10), 8), 1);    // never fewer than one
  EXPECT_EQ(pipeline::variants_per_group(1000, size_t(1) << 40, 8), 8);
  EXPECT_EQ(pipeline::variants_per_group(1000, std::nullopt, 8), 8);  // cannot tell: all
  const auto host_free = device_memory(DeviceType::cpu).available_bytes(Device::cpu());
  ASSERT_TRUE(host_free.has_value()) << "Linux reports MemAvailable";
  EXPECT_GT(*host_free, size_t(1) << 20);

  const std::vector<uint64_t> seeds = {5, 9, 13};
  GenerateRequest r = quick_request();
  std::vector<GenerateResult> alone;
  for (uint64_t seed : seeds) {
    r.seed = seed;
    alone.push_back(tiny_t2v_f32().generate(r));
  }
  for (std::optional<size_t> free : {std::optional<size_t>(1), std::optional<size_t>(size_t(1) << 40),
                                     std::optional<size_t>()}) {
    const ReportedFreeMemory memory(free);
    Recorder rec;
    const std::vector<GenerateResult> together = tiny_t2v_f32().generate_variants(r, seeds, &rec, 0);
    const bool one_at_a_time = free == size_t(1);
    int denoise_steps = 0;
    for (const Recorder::Event& e : rec.events)
      if (e.stage == "denoise") denoise_steps = std::max(denoise_steps, e.step);
    EXPECT_EQ(denoise_steps, r.steps * (one_at_a_time ? 3 : 1));
    for (size_t i = 0; i < seeds.size(); ++i) {
      EXPECT_LE(relative_l2(to_doubles(together[i].latents), to_doubles(alone[i].latents)), 1e-5);
      std::string notices;
      for (const std::string& n : together[i].notices) notices += n + "|";
      EXPECT_EQ(notices.find("1 of 3 at a time") != std::string::npos, one_at_a_time) << notices;
    }
  }
}

// Variants with step caching: each variant caches on its own, so it equals generate() with its
// seed and the same cache (its calls and skips included). (On the tiny model every seed skips
// the same calls; a batch run without the variants that skip is tests/pipeline/test_rendezvous.)
TEST(PipelineBehaviour, VariantsCacheEachOnItsOwn) {
  const std::vector<uint64_t> seeds = {5, 9, 13};
  GenerateRequest r = quick_request();
  r.steps = 10;
  for (auto [method, threshold] : {std::pair{"easycache", 1.0f}, std::pair{"easycache", 0.6f},
                                   std::pair{"teacache", 0.3f}, std::pair{"teacache", 0.6f}}) {
    r.step_cache = {.method = method, .threshold = threshold};
    std::vector<GenerateResult> alone;
    for (uint64_t seed : seeds) {
      r.seed = seed;
      alone.push_back(tiny_t2v_f32().generate(r));
    }
    const std::vector<GenerateResult> together = tiny_t2v_f32().generate_variants(r, seeds, nullptr, 0);
    for (size_t i = 0; i < seeds.size(); ++i) {
      EXPECT_EQ(together[i].transformer_calls, alone[i].transformer_calls) << method << " " << threshold << " " << i;
      EXPECT_EQ(together[i].skipped_calls, alone[i].skipped_calls) << method << " " << threshold << " " << i;
      EXPECT_EQ(together[i].transformer_calls + together[i].skipped_calls, r.steps);
      EXPECT_LE(relative_l2(to_doubles(together[i].latents), to_doubles(alone[i].latents)), 1e-5) << method << " " << i;
      std::printf("%s %.1f, variant %zu: %d calls, %d skipped\n", method, double(threshold), i,
                  together[i].transformer_calls, together[i].skipped_calls);
    }
  }
  r.step_cache = {};
  const std::vector<GenerateResult> plain = tiny_t2v_f32().generate_variants(r, seeds);
  EXPECT_EQ(plain[0].transformer_calls, r.steps);
  EXPECT_EQ(plain[0].skipped_calls, 0);
}

// Step caching on the tiny model: threshold 0 changes nothing; a huge threshold computes only
// the warm-up calls and the last step; a small one sits in between and stays close.
TEST(PipelineBehaviour, StepCacheCountsTransformerCalls) {
  GenerateRequest r = quick_request();
  r.steps = 10;
  const GenerateResult plain = tiny_t2v_f32().generate(r);
  EXPECT_EQ(plain.transformer_calls, 10);
  EXPECT_EQ(plain.skipped_calls, 0);
  for (const char* method : {"easycache", "teacache"}) {
    r.step_cache = {.method = method, .threshold = 0.0f};
    const GenerateResult zero = tiny_t2v_f32().generate(r);
    EXPECT_EQ(zero.latents.to_floats(), plain.latents.to_floats()) << method;
    EXPECT_EQ(zero.skipped_calls, 0) << method;
    r.step_cache = {.method = method, .threshold = 1e9f, .warmup = 3};
    const GenerateResult all = tiny_t2v_f32().generate(r);
    EXPECT_EQ(all.transformer_calls, 4) << method;  // 3 warm-up calls and the last step
    EXPECT_EQ(all.skipped_calls, 6) << method;
    int skipped_before = 0;
    for (float threshold : {0.1f, 0.3f, 1.0f}) {
      r.step_cache = {.method = method, .threshold = threshold, .warmup = 2};
      const GenerateResult some = tiny_t2v_f32().generate(r);
      const double e = relative_l2(to_doubles(some.latents), to_doubles(plain.latents));
      std::printf("%s threshold %.1f: %d calls, %d skipped, relative L2 to uncached %.3g\n", method, threshold,
                  some.transformer_calls, some.skipped_calls, e);
      EXPECT_EQ(some.transformer_calls + some.skipped_calls, 10) << method;
      EXPECT_GE(some.skipped_calls, skipped_before) << method;  // a larger threshold never skips less
      EXPECT_EQ(some.skipped_calls > 0, e > 0.0) << method;    // skipping is what changes the result
      skipped_before = some.skipped_calls;
    }
    EXPECT_GT(skipped_before, 0) << method;
  }
  r.step_cache = {.method = "nocache", .threshold = 0.1f};
  expect_code(StatusCode::invalid_argument, [&] { (void)tiny_t2v_f32().generate(r); }, "step_cache.method");
  r.step_cache = {.method = "teacache", .threshold = -1.0f};
  expect_code(StatusCode::invalid_argument, [&] { (void)tiny_t2v_f32().generate(r); }, "step_cache.threshold");
}

TEST(PipelineBehaviour, DefaultsComeFromTheSchedulerConfig) {
  const PipelineInfo& info = tiny_t2v_f32().info();
  EXPECT_EQ(info.variant, WanVariant::t2v);
  EXPECT_EQ(info.defaults.sampler, "unipc");
  EXPECT_EQ(info.defaults.schedule, "flow_unipc");
  EXPECT_EQ(info.defaults.shift, 3.0f);
  EXPECT_EQ(info.spatial_multiple, 16);
  EXPECT_TRUE(info.can_encode_prompts);
  EXPECT_NE(info.description.find("Wan 2.1 text-to-video"), std::string::npos) << info.description;
  GenerateRequest r = quick_request();
  r.steps = 1;
  const GenerateResult out = tiny_t2v_f32().generate(r);
  EXPECT_EQ(out.sampler, "unipc");
  EXPECT_EQ(out.schedule.rfind("flow_unipc:shift=3", 0), 0u) << out.schedule;
}

TEST(PipelineBehaviour, Ti2vModelAlsoGeneratesFromTextAlone) {
  const Pipeline& pipe = shared_pipeline(
      "ti2v_f32", {.folder = pipeline_fixtures() / "tiny-wan-ti2v", .threads = 2, .precision = PipelinePrecision::f32});
  GenerateRequest r;
  r.prompt_embeds = padded_embeds(fixture_tensor("ti2v.safetensors", "embeds"));
  r.negative_embeds = padded_embeds(fixture_tensor("ti2v.safetensors", "negative_embeds"));
  r.width = 64, r.height = 40, r.frames = 5, r.steps = 2, r.seed = 3;
  Recorder rec;
  const GenerateResult text_only = pipe.generate(r, &rec);
  EXPECT_EQ(text_only.video.width, 64);
  EXPECT_EQ(text_only.video.height, 32);  // Wan 2.2 TI2V: multiples of 32
  EXPECT_EQ(text_only.video.frames, 5);
  for (const auto& e : rec.events) EXPECT_NE(e.stage, "encode");  // no image, no VAE encode
  r.image = read_image(pipeline_fixtures() / "i2v_first_frame.png");  // 32×32: resized to cover 64×32
  Recorder rec2;
  const GenerateResult with_image = pipe.generate(r, &rec2);
  bool encoded = false;
  for (const auto& e : rec2.events) encoded |= e.stage == "encode";
  EXPECT_TRUE(encoded);
  EXPECT_NE(with_image.video.rgb, text_only.video.rgb);
}

// A Wan 2.2 A14B-style folder: the tiny model with transformer_2 (a copy of transformer) and
// a boundary ratio. With guidance_2 = guidance both experts compute the same thing, so the
// result must equal the single-transformer model's; another guidance_2 must change it.
TEST(PipelineBehaviour, TwoExpertsSwitchAtTheBoundary) {
  const fs::path dir = make_tiny_a14b_folder(tmp_dir() / "tiny-a14b");
  const Pipeline pipe = Pipeline::load({.folder = dir, .threads = 2, .precision = PipelinePrecision::f32});
  EXPECT_TRUE(pipe.info().two_experts);
  EXPECT_FLOAT_EQ(pipe.info().defaults.boundary_ratio, 0.8f);
  GenerateRequest r = quick_request();
  r.steps = 4;  // UniPC timesteps 999, 900, 750, 501 (shift 3): two at or above the boundary 800
  r.guidance_2 = r.guidance;
  const GenerateResult single = tiny_t2v_f32().generate(r);
  const GenerateResult same = pipe.generate(r);
  EXPECT_EQ(same.video.rgb, single.video.rgb);
  r.guidance_2 = 1.5f;
  const GenerateResult other = pipe.generate(r);
  EXPECT_GT(relative_l2(to_doubles(other.latents), to_doubles(single.latents)), 1e-3);
  fs::remove_all(dir);
}

// The transformer's attention kernel can be named at load (for comparing kernels in the whole
// pipeline): the same video within the kernels' f32 accuracy, and the named one really runs
// (cpu_reference accumulates in double, so its result differs from cpu_flash's, slightly).
TEST(PipelineBehaviour, AttentionKernelByName) {
  const GenerateRequest r = quick_request();
  const GenerateResult best = tiny_t2v_f32().generate(r);
  for (const char* name : {"cpu_reference", "onednn"}) {
    const Pipeline p = Pipeline::load(
        {.folder = tiny_t2v_model(), .threads = 2, .precision = PipelinePrecision::f32, .attention_kernel = name});
    const GenerateResult out = p.generate(r);
    const double e = relative_l2(to_doubles(out.latents), to_doubles(best.latents));
    std::printf("attention %s vs the default kernel: relative L2 %.3g\n", name, e);
    EXPECT_LE(e, 1e-5) << name;
    if (std::string(name) == "cpu_reference") EXPECT_GT(e, 0.0) << "the named kernel did not run";
  }
  expect_code(StatusCode::not_found, [] {
    (void)Pipeline::load({.folder = tiny_t2v_model(), .attention_kernel = "warp_drive"});
  }, "cpu_flash");  // the message lists the kernels there are
  if (find_attention_kernel("cuda_flash")) {  // a CUDA build: the kernel exists, for another device
    expect_code(StatusCode::invalid_argument, [] {
      (void)Pipeline::load({.folder = tiny_t2v_model(), .attention_kernel = "cuda_flash"});
    }, "runs on CUDA GPUs");
  }
}

}  // namespace
}  // namespace reel::test
