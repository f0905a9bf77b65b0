#include "pipeline/stage_models.hpp"

namespace reel::pipeline {

StageModels stage_models(const Pipeline::Impl& p) {
  if (!p.offload_transformer) return {*p.transformer, p.transformer_2};
  const Device device = p.backend->device();
  StageModels m{p.transformer->to(device, p.attention_kernel), std::nullopt};
  if (p.transformer_2) m.transformer_2 = p.transformer_2->to(device, p.attention_kernel);
  return m;
}

}  // namespace reel::pipeline
