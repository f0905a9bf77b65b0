// Model folders and their JSON files: scheduler_config.json → sampler/schedule specs,
// model_index.json, vae/config.json overrides, variant rules, locating components (and the
// errors for what is missing or unsupported), inspect_model.
#include <sys/stat.h>

#include <fstream>

#include "pipeline/model_files.hpp"
#include "vae/vae_model.hpp"
#include "pipeline/pipeline_impl.hpp"
#include "pipeline/pipeline_test_util.hpp"

namespace reel::test {
namespace {

namespace fs = std::filesystem;
using namespace reel::pipeline;

fs::path write_text(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

fs::path scratch(const std::string& name) {
  const fs::path p = tmp_dir() / ("model_files_" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

TEST(SchedulerConfig, WanUniPcIsTheDefaultSampler) {
  const SchedulerSettings s = read_scheduler_config(tiny_t2v_model() / "scheduler" / "scheduler_config.json");
  EXPECT_EQ(s.sampler, "unipc");
  EXPECT_EQ(s.schedule, "flow_unipc");
  ASSERT_TRUE(s.shift.has_value());
  EXPECT_EQ(*s.shift, 3.0f);
  EXPECT_TRUE(s.notes.empty());
}

TEST(SchedulerConfig, OtherSchedulersMapToTheirSamplers) {
  const fs::path d = scratch("sched");
  auto read = [&](const std::string& json) { return read_scheduler_config(write_text(d / "s.json", json)); };
  SchedulerSettings s = read(R"({"_class_name": "FlowMatchEulerDiscreteScheduler", "shift": 5.0})");
  EXPECT_EQ(s.sampler, "euler");
  EXPECT_EQ(s.schedule, "flow_euler");
  EXPECT_EQ(*s.shift, 5.0f);
  s = read(R"({"_class_name": "DPMSolverMultistepScheduler", "prediction_type": "flow_prediction",
               "use_flow_sigmas": true, "flow_shift": 7.0})");
  EXPECT_EQ(s.sampler, "dpmpp_2m");
  EXPECT_EQ(s.schedule, "flow_dpm");
  s = read(R"({"_class_name": "UniPCMultistepScheduler", "prediction_type": "flow_prediction",
               "use_flow_sigmas": true, "flow_shift": 3.0, "solver_order": 3, "solver_type": "bh1",
               "num_train_timesteps": 500, "disable_corrector": [0]})");
  EXPECT_EQ(s.sampler, "unipc:order=3,variant=bh1");
  EXPECT_EQ(s.schedule, "flow_unipc:num_train_timesteps=500");
  EXPECT_EQ(s.num_train_timesteps, 500);
  EXPECT_EQ(s.notes.size(), 1u);  // disable_corrector is not reproduced step by step
  s = read(R"({"_class_name": "SomethingNew", "flow_shift": 2.0})");
  EXPECT_EQ(s.sampler, "unipc");
  ASSERT_EQ(s.notes.size(), 1u);
  EXPECT_NE(s.notes[0].find("SomethingNew"), std::string::npos);

  std::string msg;
  EXPECT_EQ(code_of([&] { read(R"({"_class_name": "UniPCMultistepScheduler", "prediction_type": "epsilon"})"); }, &msg),
            StatusCode::unsupported);
  EXPECT_NE(msg.find("flow_prediction"), std::string::npos) << msg;
  EXPECT_EQ(code_of([&] {
              read(R"({"_class_name": "UniPCMultistepScheduler", "prediction_type": "flow_prediction",
                       "use_flow_sigmas": true, "flow_shift": "three"})");
            }, &msg),
            StatusCode::bad_format);
  EXPECT_NE(msg.find("flow_shift"), std::string::npos) << msg;
  EXPECT_EQ(code_of([&] { read(R"({"flow_shift": -1})"); }), StatusCode::bad_format);
  EXPECT_EQ(code_of([&] { read(R"({"flow_shift": 3, "flow_shift": 4})"); }), StatusCode::bad_format);  // duplicate key
  EXPECT_EQ(code_of([&] { read("not json"); }), StatusCode::bad_format);
  EXPECT_EQ(code_of([&] { read("[1, 2]"); }), StatusCode::bad_format);
  EXPECT_EQ(code_of([&] { read_scheduler_config(d / "missing.json"); }), StatusCode::not_found);
}

TEST(ModelIndex, PipelineSettings) {
  const fs::path d = scratch("index");
  ModelIndex m = read_model_index(write_text(d / "model_index.json", R"({"_class_name": "WanPipeline",
      "expand_timesteps": true, "boundary_ratio": 0.875, "text_encoder": [null, null], "vae": ["diffusers", "X"]})"));
  EXPECT_EQ(m.class_name, "WanPipeline");
  EXPECT_TRUE(m.expand_timesteps.value_or(false));
  EXPECT_FLOAT_EQ(m.boundary_ratio.value_or(0), 0.875f);
  EXPECT_EQ(m.null_components, std::vector<std::string>{"text_encoder"});
  EXPECT_EQ(code_of([&] { read_model_index(write_text(d / "a.json", R"({"expand_timesteps": "yes"})")); }),
            StatusCode::bad_format);
  EXPECT_EQ(code_of([&] { read_model_index(write_text(d / "b.json", R"({"boundary_ratio": 1.5})")); }),
            StatusCode::bad_format);
}

TEST(ModelIndex, DevZeroFifosAndHugeFilesAreRefusedBeforeReading) {
  // Each of these used to be read whole first: /dev/zero grew the process without bound, and a
  // FIFO blocked forever. Now the kind and size are checked before a byte is read.
  const fs::path d = scratch("special");
  std::error_code ec;
  fs::create_symlink("/dev/zero", d / "model_index.json", ec);
  ASSERT_FALSE(ec) << ec.message();
  std::string msg;
  EXPECT_EQ(code_of([&] { read_model_index(d / "model_index.json"); }, &msg), StatusCode::bad_format);
  EXPECT_NE(msg.find("not a regular file"), std::string::npos) << msg;
  ASSERT_EQ(::mkfifo((d / "fifo.json").c_str(), 0600), 0);
  EXPECT_EQ(code_of([&] { read_scheduler_config(d / "fifo.json"); }, &msg), StatusCode::bad_format);
  EXPECT_NE(msg.find("not a regular file"), std::string::npos) << msg;
  {
    std::ofstream big(d / "big.json", std::ios::binary);
    big.seekp(std::streamoff(2) << 30);  // a 2 GB sparse file: costs nothing to make
    big.put('}');
  }
  EXPECT_EQ(code_of([&] { read_model_index(d / "big.json"); }, &msg), StatusCode::bad_format);
  EXPECT_NE(msg.find("more than the 16777216 allowed"), std::string::npos) << msg;
  EXPECT_EQ(code_of([&] { read_model_index(d / "absent.json"); }, &msg), StatusCode::not_found);
}

TEST(GenerationDefaults, ReelDefaultsJsonOverridesTheVariantsDefaults) {
  const fs::path d = scratch("defaults");
  ModelFiles files;
  files.generation_defaults = write_text(
      d / "reel_defaults.json", R"({"width": 256, "height": 160, "frames": 33, "steps": 20, "guidance": 4.5,
                                   "shift": 2.0, "fps": 12, "_comment": "keys with _ are ignored"})");
  const PipelineDefaults p = model_defaults(WanVariant::ti2v, false, files, SchedulerSettings{});
  EXPECT_EQ(p.width, 256);
  EXPECT_EQ(p.height, 160);
  EXPECT_EQ(p.frames, 33);
  EXPECT_EQ(p.steps, 20);
  EXPECT_EQ(p.guidance, 4.5f);
  EXPECT_EQ(p.shift, 2.0f);
  EXPECT_EQ(p.fps, 12.0);
  // Without the file: the variant's own (TI2V-5B: 1280x704, 121 frames, 24 fps).
  files.generation_defaults.clear();
  EXPECT_EQ(model_defaults(WanVariant::ti2v, false, files, SchedulerSettings{}).width, 1280);
}

TEST(GenerationDefaults, BadValuesAndUnknownKeysAreNamed) {
  const fs::path d = scratch("defaults_bad");
  ModelFiles files;
  auto fails = [&](const std::string& json, const std::string& needle) {
    files.generation_defaults = write_text(d / "reel_defaults.json", json);
    std::string msg;
    EXPECT_EQ(code_of([&] { (void)model_defaults(WanVariant::t2v, false, files, SchedulerSettings{}); }, &msg),
              StatusCode::bad_format) << json;
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
  };
  fails(R"({"width": 0})", "'width'");
  fails(R"({"frames": 2.5})", "'frames'");
  fails(R"({"steps": "20"})", "'steps'");
  fails(R"({"guidance": 1e9})", "'guidance'");
  fails(R"({"fps": -1})", "'fps'");
  fails(R"({"widht": 256})", "unknown key 'widht'");
  fails(R"([1, 2])", "not a JSON object");
  // Not a regular file (a folder here; a FIFO or /dev/zero the same): refused before reading.
  fs::create_directories(d / "folder.json");
  files.generation_defaults = d / "folder.json";
  std::string msg;
  EXPECT_EQ(code_of([&] { (void)model_defaults(WanVariant::t2v, false, files, SchedulerSettings{}); }, &msg),
            StatusCode::bad_format);
  EXPECT_NE(msg.find("not a regular file"), std::string::npos) << msg;
}

TEST(VaeConfigJson, LatentNormalisationComesFromConfigJson) {
  // The tiny TI2V VAE has made-up constants in its config.json (not Wan 2.2's).
  std::vector<std::string> notes;
  const VaeConfig c = vae::read_vae_config(pipeline_fixtures() / "tiny-wan-ti2v" / "vae", &notes);
  EXPECT_EQ(c.z_dim, 48);
  EXPECT_NE(c.latents_mean, VaeConfig::wan22().latents_mean);
  EXPECT_TRUE(notes.empty());
  // A copy with a wrong z_dim or a short latents_std is refused, naming the file.
  const fs::path d = scratch("vae");
  fs::copy(tiny_t2v_model() / "vae", d / "vae");
  nlohmann::json j = nlohmann::json::parse(std::ifstream(d / "vae" / "config.json"));
  j["latents_std"] = {1.0, 2.0};
  std::ofstream(d / "vae" / "config.json") << j.dump();
  std::string msg;
  EXPECT_EQ(code_of([&] { vae::read_vae_config(d / "vae", nullptr); }, &msg), StatusCode::bad_format);
  EXPECT_NE(msg.find("latents_std"), std::string::npos) << msg;
  j = nlohmann::json::parse(std::ifstream(tiny_t2v_model() / "vae" / "config.json"));
  j["z_dim"] = 48;
  std::ofstream(d / "vae" / "config.json") << j.dump();
  EXPECT_EQ(code_of([&] { vae::read_vae_config(d / "vae", nullptr); }, &msg), StatusCode::bad_format);
  EXPECT_NE(msg.find("z_dim"), std::string::npos) << msg;
}

TEST(Variant, DecidedFromTransformerAndVae) {
  WanConfig t;
  t.in_channels = 16, t.out_channels = 16;
  EXPECT_EQ(detect_variant(t, VaeConfig::wan21()), WanVariant::t2v);
  t.in_channels = 36;
  EXPECT_EQ(detect_variant(t, VaeConfig::wan21()), WanVariant::i2v);
  t.image_dim = 1280;
  EXPECT_EQ(detect_variant(t, VaeConfig::wan21()), WanVariant::i2v);
  t.image_dim = 0, t.in_channels = 48, t.out_channels = 48;
  EXPECT_EQ(detect_variant(t, VaeConfig::wan22()), WanVariant::ti2v);
  std::string msg;
  EXPECT_EQ(code_of([&] { detect_variant(t, VaeConfig::wan21()); }, &msg), StatusCode::bad_format);  // wrong VAE
  EXPECT_NE(msg.find("z_dim"), std::string::npos) << msg;
  t.in_channels = 20, t.out_channels = 16;
  EXPECT_EQ(code_of([&] { detect_variant(t, VaeConfig::wan21()); }), StatusCode::unsupported);

  const PipelineDefaults ti2v = variant_defaults(WanVariant::ti2v, false, {}, {});
  EXPECT_EQ(ti2v.width, 1280);
  EXPECT_EQ(ti2v.frames, 121);
  EXPECT_EQ(ti2v.fps, 24.0);
  EXPECT_EQ(ti2v.shift, 5.0f);
  const PipelineDefaults a14b = variant_defaults(WanVariant::t2v, true, {}, {});
  EXPECT_EQ(a14b.steps, 40);
  EXPECT_FLOAT_EQ(a14b.boundary_ratio, 0.875f);
}

TEST(LocateModelFiles, SaysWhatIsMissing) {
  std::string msg;
  EXPECT_EQ(code_of([&] { locate_model_files({.folder = tmp_dir() / "no_such_folder"}); }, &msg), StatusCode::not_found);
  EXPECT_NE(msg.find("no_such_folder"), std::string::npos);
  const fs::path empty = scratch("empty");
  EXPECT_EQ(code_of([&] { locate_model_files({.folder = empty}); }, &msg), StatusCode::bad_format);
  EXPECT_NE(msg.find("model_index.json"), std::string::npos) << msg;
  const fs::path pickles = scratch("pickles");
  write_text(pickles / "Wan2.1_VAE.pth", "x");
  write_text(pickles / "models_t5_umt5-xxl-enc-bf16.pth", "x");
  EXPECT_EQ(code_of([&] { locate_model_files({.folder = pickles}); }, &msg), StatusCode::unsupported);
  EXPECT_NE(msg.find("Wan2.1_VAE.pth"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Diffusers"), std::string::npos) << msg;
  EXPECT_EQ(code_of([&] { locate_model_files({.folder = tiny_t2v_model() / "model_index.json"}); }, &msg),
            StatusCode::invalid_argument);

  // A folder without vae/: not_found naming it.
  const fs::path novae = scratch("novae");
  fs::copy(tiny_t2v_model(), novae, fs::copy_options::recursive);
  fs::remove_all(novae / "vae");
  EXPECT_EQ(code_of([&] { locate_model_files({.folder = novae}); }, &msg), StatusCode::not_found);
  EXPECT_NE(msg.find("vae/"), std::string::npos) << msg;

  // The complete tiny model; skipping the text encoder leaves a note.
  ModelFiles f = locate_model_files({.folder = tiny_t2v_model()});
  EXPECT_FALSE(f.text_encoder.empty());
  EXPECT_FALSE(f.tokenizer.empty());
  EXPECT_TRUE(f.transformer_2.empty());
  EXPECT_TRUE(f.notes.empty());
  f = locate_model_files({.folder = pipeline_fixtures() / "tiny-wan-ti2v"});
  EXPECT_TRUE(f.text_encoder.empty());
  EXPECT_EQ(f.notes.size(), 1u);
}

TEST(LoadErrors, NameTheComponent) {
  std::string msg;
  // A truncated transformer file.
  const fs::path d = scratch("truncated");
  fs::copy(tiny_t2v_model(), d / "m", fs::copy_options::recursive);
  const fs::path t = d / "m" / "transformer" / "diffusion_pytorch_model.safetensors";
  fs::resize_file(t, fs::file_size(t) / 2);
  EXPECT_EQ(code_of([&] { Pipeline::load({.folder = d / "m"}); }, &msg), StatusCode::bad_format);
  EXPECT_NE(msg.find("diffusion_pytorch_model.safetensors"), std::string::npos) << msg;
  // A Wan 2.2 VAE with a Wan 2.1 transformer.
  const fs::path tiny = tiny_t2v_model();
  EXPECT_EQ(code_of([&] {
              Pipeline::load({.transformer = tiny / "transformer", .vae = pipeline_fixtures() / "tiny-wan-ti2v" / "vae"});
            }, &msg),
            StatusCode::bad_format);
  EXPECT_NE(msg.find("z_dim"), std::string::npos) << msg;
  // The text encoder of another width.
  EXPECT_EQ(code_of([&] {
              Pipeline::load({.transformer = tiny / "transformer", .vae = tiny / "vae",
                              .text_encoder = fixtures_dir() / "text" / "text_encoder"});
            }, &msg),
            StatusCode::bad_format);
  EXPECT_NE(msg.find("text_dim"), std::string::npos) << msg;
  // CUDA is not a pipeline device yet.
  EXPECT_EQ(code_of([&] { Pipeline::load({.folder = tiny, .device = Device::cuda(0)}); }), StatusCode::unsupported);
}

// Wan 2.1 I2V's CLIP image encoder: found in the folder or given, loaded on demand, checked
// against the transformer (width) and its preprocessing (crop size).
TEST(ImageEncoderFiles, LocatedLoadedOrRefused) {
  const fs::path i2v = pipeline_fixtures() / "tiny-wan-i2v", t2v = tiny_t2v_model();
  ModelFiles f = locate_model_files({.folder = i2v, .vae = t2v / "vae"});
  EXPECT_EQ(f.image_encoder, i2v / "image_encoder");
  EXPECT_EQ(f.image_processor, i2v / "image_processor");
  f = locate_model_files({.folder = i2v, .vae = t2v / "vae", .load_image_encoder = false});
  EXPECT_TRUE(f.image_encoder.empty());
  // A given encoder folder finds its processor beside it (image_processor/) or inside it.
  f = locate_model_files({.transformer = i2v / "transformer", .vae = t2v / "vae", .image_encoder = i2v / "image_encoder"});
  EXPECT_EQ(f.image_encoder, i2v / "image_encoder");
  EXPECT_EQ(f.image_processor, i2v / "image_processor" / "preprocessor_config.json");
  const fs::path alone = scratch("clip_alone");
  fs::copy(i2v / "image_encoder", alone / "image_encoder", fs::copy_options::recursive);
  f = locate_model_files({.transformer = i2v / "transformer", .vae = t2v / "vae", .image_encoder = alone / "image_encoder"});
  EXPECT_TRUE(f.image_processor.empty());
  fs::copy(i2v / "image_processor" / "preprocessor_config.json", alone / "image_encoder");
  f = locate_model_files({.transformer = i2v / "transformer", .vae = t2v / "vae", .image_encoder = alone / "image_encoder"});
  EXPECT_EQ(f.image_processor, alone / "image_encoder" / "preprocessor_config.json");
  fs::remove(alone / "image_encoder" / "preprocessor_config.json");
  std::string msg;
  EXPECT_EQ(code_of([&] {
              locate_model_files({.transformer = i2v / "transformer", .vae = t2v / "vae", .image_encoder = i2v / "nope"});
            }, &msg),
            StatusCode::not_found);
  EXPECT_NE(msg.find("image encoder"), std::string::npos) << msg;

  // Given with its processor: loaded, and the request may leave image_context out.
  const Pipeline pipe = Pipeline::load({.transformer = i2v / "transformer", .vae = t2v / "vae",
                                        .image_encoder = i2v / "image_encoder", .image_processor = i2v / "image_processor",
                                        .load_text_encoder = false});
  EXPECT_TRUE(pipe.info().can_encode_images);
  // Without its processor: CLIP's defaults crop 224x224, the tiny encoder takes 24x24.
  EXPECT_EQ(code_of([&] {
              Pipeline::load({.transformer = i2v / "transformer", .vae = t2v / "vae",
                              .image_encoder = alone / "image_encoder", .load_text_encoder = false});
            }, &msg),
            StatusCode::bad_format);
  EXPECT_NE(msg.find("224x224"), std::string::npos) << msg;
  // An encoder of another width than the transformer's image_dim.
  EXPECT_EQ(code_of([&] {
              Pipeline::load({.transformer = i2v / "transformer", .vae = t2v / "vae",
                              .image_encoder = fixtures_dir() / "clip" / "image_encoder", .load_text_encoder = false});
            }, &msg),
            StatusCode::bad_format);
  EXPECT_NE(msg.find("image_dim"), std::string::npos) << msg;
  // A text-to-video model does not load one (and says so).
  const Pipeline plain = Pipeline::load({.folder = t2v, .image_encoder = i2v / "image_encoder", .load_text_encoder = false});
  EXPECT_FALSE(plain.info().can_encode_images);
  bool noted = false;
  for (const std::string& n : plain.info().notes) noted |= n.find("no image-context path") != std::string::npos;
  EXPECT_TRUE(noted);

  // inspect_model on a complete Wan 2.1 I2V-style folder lists the encoder and its processor.
  const fs::path folder = scratch("i2v_folder");
  fs::copy(t2v, folder, fs::copy_options::recursive);
  fs::remove_all(folder / "transformer");
  for (const char* sub : {"transformer", "image_encoder", "image_processor"})
    fs::copy(i2v / sub, folder / sub, fs::copy_options::recursive);
  const ModelInspection m = inspect_model(folder);
  EXPECT_EQ(m.variant, WanVariant::i2v);
  std::string lines;
  for (const std::string& l : m.lines) lines += l + "\n";
  EXPECT_NE(lines.find("image encoder: CLIP vision, hidden 8, 3 layers, 2 heads, 24 px"), std::string::npos) << lines;
  EXPECT_NE(lines.find("image processor: shortest edge 24, crop 24x24, bicubic"), std::string::npos) << lines;
  EXPECT_NE(lines.find("CLIP image features from image_encoder/"), std::string::npos) << lines;
}

TEST(Inspect, FoldersAndFiles) {
  ModelInspection m = inspect_model(tiny_t2v_model());
  EXPECT_EQ(m.kind, "model folder");
  ASSERT_TRUE(m.variant.has_value());
  EXPECT_EQ(*m.variant, WanVariant::t2v);
  EXPECT_TRUE(m.problems.empty());
  m = inspect_model(pipeline_fixtures() / "tiny-wan-ti2v");
  EXPECT_EQ(m.variant, WanVariant::ti2v);
  EXPECT_EQ(m.problems.size(), 1u);  // no text encoder
  m = inspect_model(tiny_t2v_model() / "transformer" / "diffusion_pytorch_model.safetensors");
  EXPECT_EQ(m.kind, "transformer");
  EXPECT_EQ(m.variant, WanVariant::t2v);
  bool listed = false;
  for (const std::string& l : m.lines) listed |= l.find("patch_embedding.weight F32 [64, 16, 1, 2, 2]") != std::string::npos;
  EXPECT_TRUE(listed);
  m = inspect_model(tiny_t2v_model() / "text_encoder");
  EXPECT_EQ(m.kind, "text encoder");
  m = inspect_model(tiny_t2v_model() / "tokenizer" / "spiece.model");
  EXPECT_EQ(m.kind, "tokenizer");
  m = inspect_model(fixtures_dir() / "gguf" / "types.gguf");  // not a model: named by its format
  EXPECT_EQ(m.kind, "GGUF file");
  m = inspect_model(fixtures_dir() / "gguf" / "wan_i2v.gguf");  // a bare file: no config.json for its head_dim 32
  EXPECT_EQ(m.kind, "transformer");
  ASSERT_EQ(m.problems.size(), 1u);
  EXPECT_NE(m.problems[0].find("head_dim 128 does not divide the model width 64"), std::string::npos) << m.problems[0];
  m = inspect_model(tiny_t2v_model() / "model_index.json");
  EXPECT_FALSE(m.problems.empty());
  EXPECT_EQ(code_of([&] { inspect_model(tmp_dir() / "nothing_here"); }), StatusCode::not_found);
}

}  // namespace
}  // namespace reel::test
