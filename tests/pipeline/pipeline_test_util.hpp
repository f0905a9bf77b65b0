// Helpers for the pipeline tests: the tiny models, fixture tensors and JSON, shared f32
// pipelines (loaded once per process), and the comparison the parity tests use.
#pragma once
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/test_util.hpp"
#include "reel/pipeline.hpp"
#include "reel/weights.hpp"

namespace reel::test {

inline std::filesystem::path pipeline_fixtures() { return fixtures_dir() / "pipeline"; }
// The model shipped in the repository (tools/reference/make_tiny_model.py).
inline std::filesystem::path tiny_t2v_model() { return fixtures_dir().parent_path().parent_path() / "models" / "tiny-wan-t2v"; }
// The project's trained demo model (tools/train/): the main job's model.
inline std::filesystem::path demo_model() { return fixtures_dir().parent_path().parent_path() / "models" / "reel-wan-demo"; }

inline nlohmann::json read_fixture_json(const std::string& name) {
  std::ifstream in(pipeline_fixtures() / name);
  std::stringstream s;
  s << in.rdbuf();
  return nlohmann::json::parse(s.str());
}

inline Tensor fixture_tensor(const std::string& file, const std::string& name) {
  return WeightStore::open(pipeline_fixtures() / file).load(name, DType::f32);
}

// Embeddings stored without their zero rows, padded back to the 512 rows the reference used.
inline Tensor padded_embeds(const Tensor& rows, int64_t length = 512) {
  Tensor out = Tensor::zeros({length, rows.dim(1)}, DType::f32);
  std::memcpy(out.data<float>(), rows.data<float>(), rows.nbytes());
  return out;
}

// Loaded once per process (tests may share them: a Pipeline is thread-safe and immutable).
inline const Pipeline& shared_pipeline(const std::string& key, const PipelineLoadOptions& options) {
  static std::mutex mutex;
  static std::map<std::string, std::unique_ptr<Pipeline>> loaded;
  std::lock_guard<std::mutex> lock(mutex);
  auto& slot = loaded[key];
  if (!slot) slot = std::make_unique<Pipeline>(Pipeline::load(options));
  return *slot;
}

// The request the device tests run on the tiny model (emulated device and real GPU alike):
// 64×48, 9 frames, 3 steps with guidance.
inline GenerateRequest device_test_request() {
  GenerateRequest r;
  r.prompt = "a paper boat drifts down a rainy street";
  r.negative_prompt = "blurred";
  r.width = 64, r.height = 48, r.frames = 9, r.steps = 3, r.guidance = 4.0f, r.seed = 11;
  return r;
}

// A small, quick request on the tiny model (64×48, 9 frames, 3 steps with guidance).
inline GenerateRequest quick_request(uint64_t seed = 5) {
  GenerateRequest r;
  r.prompt = "a red fox runs through the snow";
  r.negative_prompt = "blurred";
  r.width = 64, r.height = 48, r.frames = 9, r.steps = 3, r.guidance = 4.0f, r.seed = seed;
  return r;
}

// A Wan 2.2 A14B-style folder at `dir` (replaced): the tiny model with transformer_2 (a copy
// of transformer, so both experts compute the same thing) and boundary_ratio 0.8.
inline std::filesystem::path make_tiny_a14b_folder(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  fs::remove_all(dir);
  fs::create_directories(dir.parent_path());
  fs::copy(tiny_t2v_model(), dir, fs::copy_options::recursive);
  fs::copy(dir / "transformer", dir / "transformer_2", fs::copy_options::recursive);
  nlohmann::json index = nlohmann::json::parse(std::ifstream(dir / "model_index.json"));
  index["boundary_ratio"] = 0.8;
  index["transformer_2"] = {"diffusers", "WanTransformer3DModel"};
  std::ofstream(dir / "model_index.json") << index.dump(1);
  return dir;
}

inline const Pipeline& tiny_t2v_f32() {
  return shared_pipeline("t2v_f32", {.folder = tiny_t2v_model(), .threads = 2, .precision = PipelinePrecision::f32});
}

// Wan 2.1 I2V (the tiny fixture transformer) with the shipped model's VAE and text encoder;
// no CLIP image encoder, so requests pass image_context.
inline const Pipeline& tiny_i2v_f32() {
  const std::filesystem::path t2v = tiny_t2v_model();
  return shared_pipeline("i2v_f32", {.transformer = pipeline_fixtures() / "tiny-wan-i2v" / "transformer",
                                     .vae = t2v / "vae", .text_encoder = t2v / "text_encoder",
                                     .tokenizer = t2v / "tokenizer", .threads = 2,
                                     .precision = PipelinePrecision::f32});
}

// Records everything a generation reports.
class Recorder : public GenerateObserver {
 public:
  struct Event {
    std::string stage;
    int step, total;
  };
  std::vector<Event> events;
  std::vector<std::string> notices;
  // Cancel when this stage reaches this step (empty: never).
  std::string cancel_stage;
  int cancel_step = 0;

  bool on_progress(const Progress& p) override {
    events.push_back({std::string(p.stage), p.step, p.total});
    EXPECT_GE(p.step_seconds, 0.0);
    EXPECT_GE(p.stage_seconds, p.step_seconds * 0.999);
    return !(p.stage == cancel_stage && p.step >= cancel_step);
  }
  void on_notice(std::string_view message) override { notices.emplace_back(message); }
};

}  // namespace reel::test
