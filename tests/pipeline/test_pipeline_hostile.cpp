// What a hostile or careless caller meets (issue 20): non-finite values stop a generation with
// a status naming where they appeared; thread counts, frame sizes, prompt sizes and prompt
// schedules are bounded and checked before any work; FIFOs and devices are refused without
// blocking; an output path is checked before the generation.
#include <sys/stat.h>

#include <cmath>
#include <fstream>
#include <functional>

#include "pipeline/pipeline_test_util.hpp"
#include "reel/backend.hpp"
#include "reel/video_session.hpp"
#include "reel/video_stream.hpp"

namespace reel::test {
namespace {

namespace fs = std::filesystem;

// A copy of the tiny model (in a folder named `name`) whose `component` weights file went
// through `change` (tensor by tensor, f32).
fs::path changed_model(const std::string& name, const std::string& component, const std::string& file,
                       const std::function<void(const std::string&, Tensor&)>& change) {
  // per test: ctest runs the tests of this file in parallel
  const fs::path dir = tmp_dir() / (std::string(testing::UnitTest::GetInstance()->current_test_info()->name()) + "_" + name);
  fs::remove_all(dir);
  fs::copy(tiny_t2v_model(), dir, fs::copy_options::recursive);
  const fs::path path = dir / component / file;
  std::vector<std::pair<std::string, Tensor>> tensors;
  {
    const WeightStore store = WeightStore::open(path);
    for (const std::string& n : store.names()) {
      Tensor t = store.load(n, DType::f32);
      change(n, t);
      tensors.emplace_back(n, std::move(t));
    }
  }
  fs::remove(path);
  save_safetensors(path, tensors);
  return dir;
}

// One NaN in the first tensor of rank >= 2 whose name starts with `prefix`.
fs::path poisoned_model(const std::string& component, const std::string& file, const std::string& prefix) {
  bool poisoned = false;
  const fs::path dir = changed_model("poisoned_" + component, component, file, [&](const std::string& n, Tensor& t) {
    if (!poisoned && t.rank() >= 2 && n.rfind(prefix, 0) == 0) {
      t.data<float>()[t.numel() / 2] = std::nanf("");
      poisoned = true;
    }
  });
  EXPECT_TRUE(poisoned) << "no tensor starting with " << prefix;
  return dir;
}

// Replaces `key`'s value in a JSON file of the model copy.
void set_json(const fs::path& file, const std::string& key, const nlohmann::json& value) {
  std::ifstream in(file);
  nlohmann::json j = nlohmann::json::parse(in);
  j[key] = value;
  std::ofstream(file) << j.dump(2);
}

TEST(HostileInput, NanInATransformerWeightStopsAtTheFirstStep) {
  const Pipeline pipe = Pipeline::load(
      {.folder = poisoned_model("transformer", "diffusion_pytorch_model.safetensors", "blocks.0."), .threads = 2,
       .precision = PipelinePrecision::f32});
  Recorder rec;
  expect_code(StatusCode::numerical_error, [&] { (void)pipe.generate(quick_request(), &rec); },
              "the transformer's output at timestep");
  for (const Recorder::Event& e : rec.events) EXPECT_NE(e.stage, "decode");  // stopped before the decode
}

TEST(HostileInput, InspectScanFindsNonFiniteWeights) {
  const fs::path model = poisoned_model("transformer", "diffusion_pytorch_model.safetensors", "blocks.0.");
  EXPECT_TRUE(inspect_model(model).problems.empty());  // headers and shapes are fine
  const ModelInspection scanned = inspect_model(model, {.scan_values = true});
  ASSERT_EQ(scanned.problems.size(), 1u);
  EXPECT_NE(scanned.problems[0].find("transformer: tensor 'blocks.0."), std::string::npos) << scanned.problems[0];
  EXPECT_NE(scanned.problems[0].find("1 non-finite value"), std::string::npos) << scanned.problems[0];
  EXPECT_TRUE(inspect_model(tiny_t2v_model(), {.scan_values = true}).problems.empty());
  const ModelInspection file = inspect_model(model / "transformer" / "diffusion_pytorch_model.safetensors", {.scan_values = true});
  ASSERT_EQ(file.problems.size(), 1u);
}

TEST(HostileInput, NanInTheVaeDecoderIsNamed) {
  const Pipeline pipe = Pipeline::load(
      {.folder = poisoned_model("vae", "diffusion_pytorch_model.safetensors", "decoder."), .threads = 2,
       .precision = PipelinePrecision::f32});
  expect_code(StatusCode::numerical_error, [&] { (void)pipe.generate(quick_request()); }, "the VAE decoder's output");
}

TEST(HostileInput, NanInTheTextEncoderIsNamed) {
  const Pipeline pipe = Pipeline::load(
      {.folder = poisoned_model("text_encoder", "model.safetensors", "encoder."), .threads = 2,
       .precision = PipelinePrecision::f32});
  expect_code(StatusCode::numerical_error, [&] { (void)pipe.generate(quick_request()); },
              "the text encoder's prompt embeddings");
}

// Load-time validation and inspect share their checks: what makes a load fail is a problem in
// inspect too (issue 20: they disagreed on configs, schedulers and transposed weights).
TEST(HostileInput, InspectReportsWhatLoadRefuses) {
  auto expect_both = [](const fs::path& model, const std::string& needle) {
    const ModelInspection in = inspect_model(model);
    bool found = false;
    for (const std::string& p : in.problems) found |= p.find(needle) != std::string::npos;
    EXPECT_TRUE(found) << model << ": inspect does not report \"" << needle << "\" (" << in.problems.size()
                       << " problems)";
    try {
      (void)Pipeline::load({.folder = model, .threads = 2});
      ADD_FAILURE() << model << " loaded";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  const fs::path transposed = changed_model("transposed_ffn", "transformer", "diffusion_pytorch_model.safetensors",
                                            [](const std::string& n, Tensor& t) {
                                              if (n == "blocks.0.ffn.net.0.proj.weight") t = t.reshape({t.dim(1), t.dim(0)});
                                            });
  // The first FFN weight gives the model's ffn_dim, so config.json's ffn_dim is what it contradicts.
  expect_both(transposed, "'ffn_dim' is 128 but the weights have 64");

  const fs::path order = tmp_dir() / "scheduler_order";
  fs::remove_all(order);
  fs::copy(tiny_t2v_model(), order, fs::copy_options::recursive);
  set_json(order / "scheduler" / "scheduler_config.json", "solver_order", 99);
  expect_both(order, "order");
  set_json(order / "scheduler" / "scheduler_config.json", "solver_order", 2);
  set_json(order / "scheduler" / "scheduler_config.json", "solver_type", "bh9");
  expect_both(order, "bh9");

  const fs::path text = tmp_dir() / "text_config";
  fs::remove_all(text);
  fs::copy(tiny_t2v_model(), text, fs::copy_options::recursive);
  for (const auto& [key, value] : std::vector<std::pair<std::string, nlohmann::json>>{
           {"num_heads", 0}, {"num_heads", 3}, {"d_model", -32}, {"num_layers", 100000}, {"dense_act_fn", "relu"}}) {
    const nlohmann::json original = nlohmann::json::parse(std::ifstream(tiny_t2v_model() / "text_encoder" / "config.json"));
    set_json(text / "text_encoder" / "config.json", key, value);
    expect_both(text, "config.json");
    set_json(text / "text_encoder" / "config.json", key, original[key]);
  }
}

// What was validated at load stays in effect: the weights are private copies, so truncating a
// loaded model's files (SIGBUS once) or overwriting them with NaNs changes nothing.
TEST(HostileInput, WeightFilesChangedAfterLoadChangeNothing) {
  const fs::path dir = tmp_dir() / "changed_after_load";
  fs::remove_all(dir);
  fs::copy(tiny_t2v_model(), dir, fs::copy_options::recursive);
  const Pipeline pipe = Pipeline::load({.folder = dir, .threads = 2, .precision = PipelinePrecision::f32});
  GenerateRequest r = quick_request();
  r.steps = 2;
  const GenerateResult before = pipe.generate(r);
  const std::vector<fs::path> files = {dir / "transformer" / "diffusion_pytorch_model.safetensors",
                                       dir / "vae" / "diffusion_pytorch_model.safetensors",
                                       dir / "text_encoder" / "model.safetensors"};
  for (const fs::path& f : files) fs::resize_file(f, 64);  // truncated in place
  const GenerateResult truncated = pipe.generate(r);
  EXPECT_TRUE(truncated.video.rgb == before.video.rgb);
  for (const fs::path& f : files) {  // the same size again, every float a NaN
    const size_t size = fs::file_size(tiny_t2v_model() / f.parent_path().filename() / f.filename());
    std::vector<float> nans(size / 4 + 1, std::nanf(""));
    std::ofstream(f, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(nans.data()), std::streamsize(size));
  }
  const GenerateResult overwritten = pipe.generate(r);
  EXPECT_TRUE(overwritten.video.rgb == before.video.rgb);
}

TEST(HostileInput, NonFiniteCallerTensorsAreInvalidArguments) {
  const Pipeline& pipe = tiny_t2v_f32();
  const int64_t d = pipe.info().transformer.text_dim;
  {
    GenerateRequest r = quick_request();
    r.prompt_embeds = random_tensor({7, d}, 1);
    r.prompt_embeds.data<float>()[3] = INFINITY;
    expect_code(StatusCode::invalid_argument, [&] { (void)pipe.generate(r); }, "prompt_embeds holds a non-finite value (inf");
  }
  {
    GenerateRequest r = quick_request();
    r.negative_embeds = random_tensor({5, d}, 2);
    r.negative_embeds.data<float>()[0] = std::nanf("");
    expect_code(StatusCode::invalid_argument, [&] { (void)pipe.generate(r); }, "negative_embeds holds a non-finite value (NaN");
  }
  {
    GenerateRequest r = quick_request();
    const int64_t c = pipe.info().transformer.out_channels;
    r.initial_noise = random_tensor({c, 3, 3, 4}, 3);
    r.initial_noise.data<float>()[r.initial_noise.numel() - 1] = std::nanf("");
    expect_code(StatusCode::invalid_argument, [&] { (void)pipe.generate(r); }, "initial_noise");
  }
}

TEST(HostileInput, PromptsAreBoundedAndCheckedByName) {
  const Pipeline& pipe = tiny_t2v_f32();
  GenerateRequest r = quick_request();
  r.prompt = std::string(kMaxPromptBytes + 1, 'a');
  expect_code(StatusCode::invalid_argument, [&] { (void)pipe.generate(r); }, "prompt is 65537 bytes");
  r = quick_request();
  r.negative_prompt = "blurred \xff";
  expect_code(StatusCode::invalid_argument, [&] { (void)pipe.generate(r); }, "negative_prompt is not valid UTF-8");
}

TEST(HostileInput, ALongPromptIsCutWithANotice) {
  GenerateRequest r = quick_request();
  r.prompt.clear();
  for (int i = 0; i < 700; ++i) r.prompt += "fox ";
  r.steps = 1;
  const GenerateResult out = tiny_t2v_f32().generate(r);
  bool noticed = false;
  for (const std::string& n : out.notices) noticed |= n.find("the prompt has") != std::string::npos &&
                                                     n.find("the rest is ignored") != std::string::npos;
  EXPECT_TRUE(noticed);
  r.prompt = "a fox";
  for (const std::string& n : tiny_t2v_f32().generate(r).notices) EXPECT_EQ(n.find("the prompt has"), std::string::npos) << n;
}

TEST(HostileInput, FrameSizeIsBoundedBeforeAnyWork) {
  GenerateRequest r = quick_request();
  r.width = 16000, r.height = 16000;
  Recorder rec;
  expect_code(StatusCode::invalid_argument, [&] { (void)tiny_t2v_f32().generate(r, &rec); }, "over reel's limit");
  EXPECT_TRUE(rec.events.empty());
}

TEST(HostileInput, ThreadCountsAreBounded) {
  EXPECT_GE(max_threads(), 64);
  expect_code(StatusCode::invalid_argument, [] { set_num_threads(100000); }, "between 0");
  expect_code(StatusCode::invalid_argument, [] { (void)make_cpu_backend({.threads = max_threads() + 1}); },
              "CpuBackendOptions::threads");
  expect_code(StatusCode::invalid_argument,
              [] { (void)Pipeline::load({.folder = tiny_t2v_model(), .threads = 100000}); }, "threads must be between");
  set_num_threads(0);
}

TEST(HostileInput, PromptSchedulesAreCheckedWholeAndBounded) {
  expect_code(StatusCode::invalid_argument, [] { (void)parse_prompt_schedule("0 a\n2147483647 b\n", "s"); },
              "s line 2: chunk index '2147483647' is past the last chunk");
  expect_code(StatusCode::invalid_argument, [] { (void)parse_prompt_schedule("0s a\n1e300s b\n", "s"); });
  expect_code(StatusCode::invalid_argument, [] { (void)parse_prompt_schedule("0 a\n1 fine\n2 b\xff\n", "s"); },
              "s line 3: the prompt is not valid UTF-8");
  // binary lines are quoted as printable text, and cut
  try {
    (void)parse_prompt_schedule(std::string("\x01\x02\x7f garbage ") + std::string(200, 'x'), "bin");
    ADD_FAILURE();
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("'??? garbage"), std::string::npos) << m;
    EXPECT_LT(m.size(), 250u) << m;
    for (char c : m) EXPECT_TRUE(c >= 0x20 && c < 0x7f) << m;
  }
  // a session refuses the same things the parser does, whoever built the list
  VideoSessionOptions o;
  o.request = quick_request();
  o.prompts = {{0, false, "a fox", {}}, {3, false, "bad \xc3", {}}};
  expect_code(StatusCode::invalid_argument, [&] { VideoSession s(tiny_t2v_f32(), o); }, "prompts[1].prompt");
  o.prompts = {{0, false, "a fox", {}}, {2e9, false, "late", {}}};
  expect_code(StatusCode::invalid_argument, [&] { VideoSession s(tiny_t2v_f32(), o); }, "prompts[1]: start");
}

TEST(HostileInput, FifosAndDevicesAreRefusedWithoutBlocking) {
  const fs::path dir = tmp_dir() / "fifos";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const fs::path fifo = dir / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  expect_code(StatusCode::bad_format, [&] { (void)read_prompt_schedule(fifo); }, "a FIFO");
  expect_code(StatusCode::bad_format, [&] { (void)read_prompt_schedule("/dev/zero"); }, "a device");
  expect_code(StatusCode::bad_format, [&] { (void)read_image(fifo); }, "a FIFO");
  expect_code(StatusCode::bad_format, [&] { (void)WeightStore::open(fifo); });
  const fs::path webm_fifo = dir / "clip.webm";
  ASSERT_EQ(::mkfifo(webm_fifo.c_str(), 0600), 0);
  if (video_format_available(VideoFormat::webm))
    expect_code(StatusCode::bad_format, [&] { (void)read_video_tail(webm_fifo, 1); }, "a FIFO");
  const fs::path y4m_fifo = dir / "clip.y4m";
  ASSERT_EQ(::mkfifo(y4m_fifo.c_str(), 0600), 0);
  expect_code(StatusCode::bad_format, [&] { (void)read_video_tail(y4m_fifo, 1); }, "a FIFO");
  // a transformer given as a FIFO, or sitting in the folder as one
  expect_code(StatusCode::bad_format,
              [&] { (void)Pipeline::load({.folder = tiny_t2v_model(), .transformer = fifo, .threads = 2}); }, "a FIFO");
  const fs::path model = dir / "model";
  fs::copy(tiny_t2v_model(), model, fs::copy_options::recursive);
  fs::remove(model / "transformer" / "diffusion_pytorch_model.safetensors");
  ASSERT_EQ(::mkfifo((model / "transformer" / "diffusion_pytorch_model.safetensors").c_str(), 0600), 0);
  expect_code(StatusCode::not_found, [&] { (void)Pipeline::load({.folder = model, .threads = 2}); }, "holds no");
  const ModelInspection in = inspect_model(model);
  EXPECT_FALSE(in.problems.empty());
  const ModelInspection in_fifo = inspect_model(fifo);  // returns at once, saying why
  ASSERT_FALSE(in_fifo.problems.empty());
  EXPECT_NE(in_fifo.problems[0].find("a FIFO"), std::string::npos) << in_fifo.problems[0];
}

TEST(HostileInput, OutputPathsAreCheckedBeforeGenerating) {
  const fs::path dir = tmp_dir() / "outputs";
  fs::remove_all(dir);
  fs::create_directories(dir / "a_folder.y4m");
  expect_code(StatusCode::io_error, [&] { check_video_path(dir / "missing" / "clip.y4m"); }, "does not exist");
  expect_code(StatusCode::io_error, [&] { check_video_path(dir / "a_folder.y4m"); }, "it is a folder");
  expect_code(StatusCode::io_error, [&] { check_video_path(dir / (std::string(250, 'n') + ".y4m")); });
  expect_code(StatusCode::invalid_argument, [&] { check_video_path(dir / "clip.avi"); }, "cannot tell the video format");
  check_video_path(dir / "clip.y4m");
  check_video_path(dir / "frames/");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);  // no temporaries left
  EXPECT_FALSE(fs::exists(dir / "clip.y4m"));
}

TEST(HostileInput, TruncatedJpegClaimingALargeSizeIsRefusedBeforeDecoding) {
  // A JPEG header (SOI, SOF0 claiming 8000x8000, within the pixel limit) and 3.4 KB: stb
  // would decode a grey picture; the size check says the file cannot hold that many pixels.
  const uint8_t header[] = {0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x11, 0x08, 0x1F, 0x40, 0x1F, 0x40, 0x03,
                            0x01, 0x22, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01, 0xFF, 0xD9};
  std::vector<uint8_t> jpeg(3400, 0);
  std::copy(std::begin(header), std::end(header), jpeg.begin());
  expect_code(StatusCode::bad_format, [&] { (void)decode_image(jpeg, "huge.jpg"); }, "cannot hold a 8000x8000 JPEG");
}

}  // namespace
}  // namespace reel::test
