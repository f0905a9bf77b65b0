// Internal: where a Wan model's components are (a diffusers folder or explicit files), what its
// model_index.json, scheduler_config.json and vae/config.json say, and the variant rules.
#pragma once
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "reel/pipeline.hpp"

namespace reel::pipeline {

// The pipeline-level settings of model_index.json.
struct ModelIndex {
  bool present = false;
  std::string class_name;                // "WanPipeline", "WanImageToVideoPipeline"
  std::optional<bool> expand_timesteps;  // Wan 2.2 TI2V
  std::optional<float> boundary_ratio;   // Wan 2.2 A14B
  std::vector<std::string> null_components;  // listed as [null, null]
};

// What scheduler/scheduler_config.json asks for, as registry specs.
struct SchedulerSettings {
  bool present = false;
  std::string sampler = "unipc";
  std::string schedule = "flow_unipc";
  std::optional<float> shift;
  int num_train_timesteps = 1000;
  std::vector<std::string> notes;
};

struct ModelFiles {
  std::filesystem::path folder;
  std::filesystem::path transformer, transformer_2, vae, text_encoder, tokenizer;  // empty: absent
  std::filesystem::path image_encoder, image_processor;  // Wan 2.1 I2V's CLIP; empty: absent
  std::filesystem::path scheduler_config;  // empty: absent
  std::filesystem::path generation_defaults;  // reel_defaults.json; empty: absent
  ModelIndex index;
  std::vector<std::string> notes;
};

// Finds every component. Throws not_found / invalid_argument / bad_format / unsupported with
// a message that says which component is missing and what a model folder holds.
ModelFiles locate_model_files(const PipelineLoadOptions& options);

ModelIndex read_model_index(const std::filesystem::path& json);
SchedulerSettings read_scheduler_config(const std::filesystem::path& json);

// Variant rules (decided once, from the transformer and VAE configurations). Throws
// unsupported / bad_format naming what does not fit.
WanVariant detect_variant(const WanConfig& transformer, const VaeConfig& vae);
PipelineDefaults variant_defaults(WanVariant variant, bool two_experts, const ModelIndex& index,
                                  const SchedulerSettings& scheduler);

// The variant's defaults, then what the folder's reel_defaults.json (optional) sets: width,
// height, frames, steps, guidance, shift, fps. A model that was trained at one size says so
// there; diffusers ignores the file. Throws bad_format naming a bad or unknown key.
PipelineDefaults model_defaults(WanVariant variant, bool two_experts, const ModelFiles& files,
                                const SchedulerSettings& scheduler);

}  // namespace reel::pipeline
