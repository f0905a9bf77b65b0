// The transformer(s) one denoising stage runs with: the resident ones, or, when the pipeline
// offloads (PipelineLoadOptions::offload_transformer), copies uploaded to the backend's device
// for this stage only, so that their memory is free again before the VAE decodes.
#pragma once
#include <optional>

#include "pipeline/pipeline_impl.hpp"

namespace reel::pipeline {

struct StageModels {
  WanTransformer transformer;
  std::optional<WanTransformer> transformer_2;  // A14B low-noise expert
};

StageModels stage_models(const Pipeline::Impl& p);

}  // namespace reel::pipeline
