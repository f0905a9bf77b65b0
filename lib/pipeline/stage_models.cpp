#include "pipeline/stage_models.hpp"

namespace reel::pipeline {

namespace {

// The request's strengths of the LoRAs `t` carries (`index`: their positions in the pipeline's list).
std::vector<float> strengths_of(const std::vector<size_t>& index, const GenerateRequest& r) {
  std::vector<float> mine;
  for (size_t i : index) mine.push_back(r.lora_strengths[i]);
  return mine;
}

WanTransformer at_strengths(const WanTransformer& t, const std::vector<size_t>& index, const GenerateRequest& r) {
  return r.lora_strengths.empty() ? t : t.with_lora_strengths(strengths_of(index, r));
}

}  // namespace

void check_lora_strengths(const Pipeline::Impl& p, const GenerateRequest& r) {
  if (r.lora_strengths.empty()) return;
  const size_t loaded = p.info.loras.size();
  require(r.lora_strengths.size() == loaded, StatusCode::invalid_argument,
          "lora_strengths: " + std::to_string(r.lora_strengths.size()) + " value(s) for a model loaded with " +
              std::to_string(loaded) + " LoRA(s)");
  p.transformer->check_lora_strengths(strengths_of(p.loras_of_transformer, r));
  if (p.transformer_2) p.transformer_2->check_lora_strengths(strengths_of(p.loras_of_transformer_2, r));
}

StageModels stage_models(const Pipeline::Impl& p, const GenerateRequest& r) {
  StageModels m{at_strengths(*p.transformer, p.loras_of_transformer, r), std::nullopt};
  if (p.transformer_2) m.transformer_2 = at_strengths(*p.transformer_2, p.loras_of_transformer_2, r);
  if (!p.offload_transformer) return m;
  const Device device = p.backend->device();
  m.transformer = m.transformer.to(device, p.attention_kernel);
  if (m.transformer_2) m.transformer_2 = m.transformer_2->to(device, p.attention_kernel);
  return m;
}

}  // namespace reel::pipeline
