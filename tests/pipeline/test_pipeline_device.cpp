// The pipeline's device path, checked without a GPU on an emulated device (tests/common/
// emulated_device.hpp): the tiny model generates on "cuda:0" exactly what it generates on the
// CPU, device data is touched only through backend ops, the weights cross to the device once
// at load, each request moves only its inputs, per-step latents and outputs, and the text
// encoder stays on the host unless asked. The same code runs on a real GPU through
// CudaBackend (tests/cuda/test_pipeline_cuda.cpp compares that with the CPU).
#include "common/emulated_device.hpp"
#include "pipeline/pipeline_test_util.hpp"
#include "reel/video_session.hpp"

namespace reel::test {
namespace {

uint64_t file_bytes(const std::filesystem::path& p) { return std::filesystem::file_size(p); }

// The emulated-device pipeline (f32; the umT5 on `text_device`), loaded once per placement.
const Pipeline& device_pipeline(Device text_device) {
  EmulatedDevice::install();
  static std::map<std::string, std::unique_ptr<Pipeline>> loaded;
  auto& slot = loaded[text_device.str()];
  if (!slot) {
    PipelineLoadOptions o{.folder = tiny_t2v_model(), .threads = 2, .precision = PipelinePrecision::f32};
    o.backend = std::make_shared<EmulatedDeviceBackend>(2);
    o.text_encoder_device = text_device;
    slot = std::make_unique<Pipeline>(Pipeline::load(o));
  }
  return *slot;
}

void expect_identical(const Tensor& a, const Tensor& b, const char* what) {
  ASSERT_TRUE(a.is_cpu() && b.is_cpu()) << what;
  ASSERT_EQ(a.shape(), b.shape()) << what;
  const std::vector<float> x = a.to_floats(), y = b.to_floats();
  size_t differ = 0;
  for (size_t i = 0; i < x.size(); ++i) differ += std::memcmp(&x[i], &y[i], sizeof(float)) != 0;
  EXPECT_EQ(differ, 0u) << what << ": " << differ << " of " << x.size() << " values differ";
}

TEST(PipelineOnDevice, GeneratesExactlyWhatTheCpuGenerates) {
  const Pipeline& dev = device_pipeline(Device::cpu());
  EXPECT_NE(dev.info().description.find("f32 on cuda:0"), std::string::npos) << dev.info().description;
  EXPECT_NE(dev.info().description.find("layers on cpu"), std::string::npos) << dev.info().description;
  for (bool batch_cfg : {true, false}) {
    GenerateRequest r = device_test_request();
    r.batch_cfg = batch_cfg;
    const GenerateResult on_device = dev.generate(r);
    const GenerateResult on_cpu = tiny_t2v_f32().generate(r);
    EXPECT_TRUE(on_device.latents.is_cpu());
    expect_identical(on_device.latents, on_cpu.latents, batch_cfg ? "latents (batched CFG)" : "latents");
    ASSERT_EQ(on_device.video.rgb.size(), on_cpu.video.rgb.size());
    EXPECT_TRUE(on_device.video.rgb == on_cpu.video.rgb) << "frames differ";
  }
}

TEST(PipelineOnDevice, WeightsCrossOnceAndRequestsMoveOnlyActivations) {
  EmulatedDevice& emu = EmulatedDevice::install();
  emu.ledger().reset_transfers();
  const int64_t live_before = emu.ledger().live_bytes;
  PipelineLoadOptions o{.folder = tiny_t2v_model(), .threads = 2, .precision = PipelinePrecision::f32};
  o.backend = std::make_shared<EmulatedDeviceBackend>(2);
  const Pipeline p = Pipeline::load(o);
  const uint64_t load_h2d = emu.ledger().h2d_bytes;
  const int64_t resident = emu.ledger().live_bytes - live_before;
  // The f32 model files are (almost all) weights: transformer and VAE decoder go to the device.
  const uint64_t transformer = file_bytes(tiny_t2v_model() / "transformer" / "diffusion_pytorch_model.safetensors");
  const uint64_t vae = file_bytes(tiny_t2v_model() / "vae" / "diffusion_pytorch_model.safetensors");
  std::printf("load: %llu bytes uploaded, %lld resident (transformer file %llu, VAE file %llu)\n",
              (unsigned long long)load_h2d, (long long)resident, (unsigned long long)transformer,
              (unsigned long long)vae);
  EXPECT_GE(load_h2d, transformer * 9 / 10);
  EXPECT_GE(resident, int64_t(transformer * 9 / 10));
  EXPECT_EQ(emu.ledger().d2h_bytes, 0u) << "loading downloads nothing";

  const GenerateRequest r = device_test_request();  // batched CFG: one forward of 2 per step
  for (int round = 0; round < 2; ++round) {
    emu.ledger().reset_transfers();
    const GenerateResult out = p.generate(r);
    const uint64_t h2d = emu.ledger().h2d_bytes, d2h = emu.ledger().d2h_bytes;
    const uint64_t h2d_n = emu.ledger().h2d_copies, d2h_n = emu.ledger().d2h_copies;
    std::printf("request %d: up %llu bytes in %llu copies, down %llu bytes in %llu copies, peak %lld\n", round,
                (unsigned long long)h2d, (unsigned long long)h2d_n, (unsigned long long)d2h,
                (unsigned long long)d2h_n, (long long)emu.ledger().peak_bytes.load());
    // What a request must move, from the model's sizes: the two text contexts (512 × 32 f32),
    // per step the patch tokens of cond+uncond ([2, 36, 64] f32) and the timestep sinusoid
    // (256 f32), the RoPE tables once per grid (first request only: [36, 32] f32 × 2), the
    // latents for the VAE ([16, 3, 6, 8] f32) and its per-channel mean and std (16 f32 each);
    // down: per step the velocity of both passes, then the frames ([3, 9, 48, 64] f32).
    const uint64_t f = sizeof(float), steps = uint64_t(r.steps);
    const uint64_t latents = 16 * 3 * 6 * 8 * f;
    const uint64_t up = 2 * 512 * 32 * f + steps * (2 * 36 * 64 * f + 256 * f) +
                        (round == 0 ? 2 * 36 * 32 * f : 0) + latents + 2 * 16 * f;
    const uint64_t down = steps * 2 * latents + 3 * 9 * 48 * 64 * f;
    EXPECT_EQ(h2d, up) << "only inputs, per-step latents and tables may cross to the device (no weights again)";
    EXPECT_EQ(d2h, down) << "only per-step outputs and frames may come back";
    const uint64_t up_copies = 2 + 2 * steps + (round == 0 ? 2 : 0) + 1 + 2;
    EXPECT_EQ(h2d_n, up_copies) << "copies per request grow with the steps, not with the layers";
    EXPECT_EQ(out.video.frames, 9);
  }
}

TEST(PipelineOnDevice, TextEncoderStaysOnTheHostUnlessAsked) {
  EmulatedDevice& emu = EmulatedDevice::install();
  const uint64_t encoder = file_bytes(tiny_t2v_model() / "text_encoder" / "model.safetensors");
  const int64_t before = emu.ledger().live_bytes;
  {
    const Pipeline& host_text = device_pipeline(Device::cpu());  // may be loaded already
    (void)host_text;
  }
  const int64_t with_host_text = emu.ledger().live_bytes;
  const Pipeline& device_text = device_pipeline(Device::cuda(0));
  const int64_t with_device_text = emu.ledger().live_bytes;
  std::printf("device memory: %lld → %lld → %lld bytes (umT5 file %llu)\n", (long long)before,
              (long long)with_host_text, (long long)with_device_text, (unsigned long long)encoder);
  EXPECT_NE(device_text.info().description.find("layers on cuda:0"), std::string::npos);
  // The second pipeline holds a transformer, a VAE and the encoder on the device: at least
  // the encoder's weights more than the transformer alone.
  const uint64_t transformer = file_bytes(tiny_t2v_model() / "transformer" / "diffusion_pytorch_model.safetensors");
  EXPECT_GE(with_device_text - with_host_text, int64_t(transformer + encoder * 9 / 10));
  // Both placements give the same video (same kernels, same order).
  const GenerateRequest r = device_test_request();
  const GenerateResult a = device_pipeline(Device::cpu()).generate(r);
  const GenerateResult b = device_text.generate(r);
  expect_identical(a.latents, b.latents, "umT5 on the host vs on the device");
}

TEST(PipelineOnDevice, EndlessVideoChunksEqualTheCpuOnes) {
  VideoSessionOptions o;
  o.request = device_test_request();
  o.request.height = 32;
  o.context_frames = 1;
  o.prompts = parse_prompt_schedule("0 a paper boat\n1: the boat sinks\n");
  VideoSession on_device(device_pipeline(Device::cpu()), o);
  VideoSession on_cpu(tiny_t2v_f32(), o);
  for (int k = 0; k < 3; ++k) {
    const VideoChunk a = on_device.next(), b = on_cpu.next();
    expect_identical(a.latents, b.latents, ("chunk " + std::to_string(k) + " latents").c_str());
    EXPECT_TRUE(a.video.rgb == b.video.rgb) << "chunk " << k << " frames differ";
  }
}

// Loads `o` twice, on the CPU and on the emulated device, and generates `r` on both.
void expect_same_on_device(PipelineLoadOptions o, const GenerateRequest& r, const char* what) {
  EmulatedDevice::install();
  o.threads = 2, o.precision = PipelinePrecision::f32;
  const GenerateResult on_cpu = Pipeline::load(o).generate(r);
  o.backend = std::make_shared<EmulatedDeviceBackend>(2);
  const GenerateResult on_device = Pipeline::load(o).generate(r);
  expect_identical(on_device.latents, on_cpu.latents, what);
  EXPECT_TRUE(on_device.video.rgb == on_cpu.video.rgb) << what << ": frames differ";
}

TEST(PipelineOnDevice, ImageToVideoTi2vEqualsTheCpu) {  // VAE encode of the image, per-token timesteps
  GenerateRequest r;
  r.prompt_embeds = padded_embeds(fixture_tensor("ti2v.safetensors", "embeds"));
  r.negative_embeds = padded_embeds(fixture_tensor("ti2v.safetensors", "negative_embeds"));
  r.image = read_image(pipeline_fixtures() / "first_frame.png");
  r.width = 64, r.height = 32, r.frames = 9, r.steps = 2, r.guidance = 5.0f, r.seed = 3;
  expect_same_on_device({.folder = pipeline_fixtures() / "tiny-wan-ti2v"}, r, "ti2v");
}

TEST(PipelineOnDevice, ImageToVideoWan21I2vEqualsTheCpu) {  // image channels and CLIP context
  const std::filesystem::path t2v = tiny_t2v_model();
  const nlohmann::json c = read_fixture_json("i2v.json");
  GenerateRequest r;
  r.prompt = c["prompt"].get<std::string>();
  r.negative_prompt = c["negative_prompt"].get<std::string>();
  r.width = c["width"].get<int>(), r.height = c["height"].get<int>(), r.frames = c["frames"].get<int>();
  r.steps = 2, r.guidance = c["guidance"].get<float>(), r.seed = 4;
  r.image = read_image(pipeline_fixtures() / "i2v_first_frame.png");
  r.image_context = fixture_tensor("i2v.safetensors", "image_embeds");
  expect_same_on_device({.transformer = pipeline_fixtures() / "tiny-wan-i2v" / "transformer", .vae = t2v / "vae",
                         .text_encoder = t2v / "text_encoder", .tokenizer = t2v / "tokenizer"},
                        r, "i2v");
}

TEST(PipelineOnDevice, ImageToVideoWan21I2vWithItsClipEncoderEqualsTheCpu) {  // CLIP on the device
  const std::filesystem::path t2v = tiny_t2v_model();
  GenerateRequest r;
  r.prompt = "a bird flies over the city at night";
  r.width = 32, r.height = 32, r.frames = 5, r.steps = 2, r.guidance = 3.0f, r.seed = 5;
  r.image = read_image(pipeline_fixtures() / "i2v_clip_first_frame.png");
  expect_same_on_device({.folder = pipeline_fixtures() / "tiny-wan-i2v", .vae = t2v / "vae",
                         .text_encoder = t2v / "text_encoder", .tokenizer = t2v / "tokenizer"},
                        r, "i2v with CLIP");
}

// Offload: the transformer is uploaded for each request's denoising and freed before the
// decode; same video, the weights cross once per request, and nothing of it stays resident.
TEST(PipelineOnDevice, LorasMergedAndAtRunTimeEqualTheCpu) {  // side paths and changed tensors on the device
  const std::filesystem::path lora = fixtures_dir() / "lora" / "tiny_t2v_kohya.safetensors";
  GenerateRequest r = device_test_request();
  expect_same_on_device({.folder = tiny_t2v_model(), .loras = {{.path = lora, .strength = 0.7f}}}, r, "merged LoRA");
  r.lora_strengths = {0.4f};
  expect_same_on_device({.folder = tiny_t2v_model(), .loras = {{.path = lora}}, .lora_mode = LoraMode::runtime}, r,
                        "runtime LoRA at a request's strength");
  expect_same_on_device({.folder = tiny_t2v_model(), .offload_transformer = true, .loras = {{.path = lora}},
                         .lora_mode = LoraMode::runtime},
                        r, "runtime LoRA, offloaded transformer");
}

TEST(PipelineOnDevice, OffloadedTransformerUploadsPerRequestAndFreesBeforeTheDecode) {
  EmulatedDevice& emu = EmulatedDevice::install();
  const int64_t before = emu.ledger().live_bytes;
  PipelineLoadOptions o{.folder = tiny_t2v_model(), .threads = 2, .precision = PipelinePrecision::f32};
  o.backend = std::make_shared<EmulatedDeviceBackend>(2);
  o.offload_transformer = true;
  const Pipeline offloaded = Pipeline::load(o);
  const int64_t resident = emu.ledger().live_bytes - before;
  const uint64_t transformer = file_bytes(tiny_t2v_model() / "transformer" / "diffusion_pytorch_model.safetensors");
  const uint64_t vae = file_bytes(tiny_t2v_model() / "vae" / "diffusion_pytorch_model.safetensors");
  std::printf("offload: %lld bytes resident after load (VAE file %llu)\n", (long long)resident, (unsigned long long)vae);
  EXPECT_LT(resident, int64_t(vae)) << "only the VAE (decoder) is resident";

  const GenerateRequest r = device_test_request();
  for (int round = 0; round < 2; ++round) {
    emu.ledger().reset_transfers();
    const GenerateResult out = offloaded.generate(r);
    const uint64_t h2d = emu.ledger().h2d_bytes;
    std::printf("offload request %d: up %llu bytes, peak %lld, resident after %lld\n", round, (unsigned long long)h2d,
                (long long)emu.ledger().peak_bytes.load(), (long long)(emu.ledger().live_bytes - before));
    EXPECT_GE(h2d, transformer * 9 / 10) << "the weights cross for each request";
    EXPECT_LT(h2d, transformer * 2) << "...once";
    EXPECT_EQ(emu.ledger().live_bytes - before, resident) << "the uploaded weights are freed after the request";
    const GenerateResult cpu = tiny_t2v_f32().generate(r);
    expect_identical(out.latents, cpu.latents, "offloaded");
    EXPECT_TRUE(out.video.rgb == cpu.video.rgb);
  }
}

TEST(PipelineOnDevice, OffloadedEndlessVideoEqualsTheCpu) {  // each window uploads and frees the transformer
  EmulatedDevice& emu = EmulatedDevice::install();
  PipelineLoadOptions o{.folder = tiny_t2v_model(), .threads = 2, .precision = PipelinePrecision::f32};
  o.backend = std::make_shared<EmulatedDeviceBackend>(2);
  o.offload_transformer = true;
  const Pipeline offloaded = Pipeline::load(o);
  VideoSessionOptions so;
  so.request = device_test_request();
  so.request.height = 32;
  so.context_frames = 1;
  // Device memory a session holds between chunks (text contexts, the decoder's causal cache):
  // no more with offload than without (less by the resident model's RoPE table cache), so the
  // offloaded weights are never left behind.
  const auto held_after_two_chunks = [&](const Pipeline& p, std::vector<Tensor>* latents) {
    VideoSession session(p, so);
    const int64_t before = emu.ledger().live_bytes;
    for (int k = 0; k < 2; ++k) latents->push_back(session.next().latents);
    return emu.ledger().live_bytes - before;
  };
  std::vector<Tensor> resident_latents, offloaded_latents;
  const int64_t resident_held = held_after_two_chunks(device_pipeline(Device::cpu()), &resident_latents);
  const int64_t offloaded_held = held_after_two_chunks(offloaded, &offloaded_latents);
  std::printf("device memory a session holds after 2 chunks: %lld resident, %lld offloaded\n",
              (long long)resident_held, (long long)offloaded_held);
  EXPECT_LE(offloaded_held, resident_held);
  VideoSession on_cpu(tiny_t2v_f32(), so);
  for (int k = 0; k < 2; ++k)
    expect_identical(offloaded_latents[size_t(k)], on_cpu.next().latents, ("offloaded chunk " + std::to_string(k)).c_str());
}

TEST(PipelineOnDevice, AskingForAMissingGpuSaysSo) {
  if (cuda_device_count() > 0) GTEST_SKIP() << "this machine has a GPU";
  try {
    (void)Pipeline::load({.folder = tiny_t2v_model(), .device = Device::cuda(0)});
    ADD_FAILURE() << "expected unsupported";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::unsupported) << e.what();
    EXPECT_NE(std::string(e.what()).find("cuda"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace reel::test
