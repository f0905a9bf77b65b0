// The transformer(s) one denoising stage runs with: the resident ones at the request's LoRA
// strengths (GenerateRequest::lora_strengths), or, when the pipeline offloads
// (PipelineLoadOptions::offload_transformer), copies uploaded to the backend's device for this
// stage only, so that their memory is free again before the VAE decodes.
#pragma once
#include <optional>

#include "pipeline/pipeline_impl.hpp"

namespace reel::pipeline {

struct StageModels {
  WanTransformer transformer;
  std::optional<WanTransformer> transformer_2;  // A14B low-noise expert
};

StageModels stage_models(const Pipeline::Impl& p, const GenerateRequest& r);

// Throws invalid_argument when the request's LoRA strengths cannot be applied (count, value,
// a merged LoRA at another strength); what stage_models() would throw, checked before any work.
void check_lora_strengths(const Pipeline::Impl& p, const GenerateRequest& r);

}  // namespace reel::pipeline
