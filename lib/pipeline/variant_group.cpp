// How many variants generate_variants batches through the transformer at once when the caller
// leaves it to reel (batch 0): as many as the free memory of the model's device holds.
#include <algorithm>
#include <cstdio>

#include "pipeline/pipeline_impl.hpp"

namespace reel::pipeline {

namespace {

std::string gigabytes(double bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f GB", bytes / 1e9);
  return text;
}

}  // namespace

int64_t step_bytes_per_variant(const WanConfig& c, DType activations, int64_t tokens, int copies) {
  // Per token: the FFN's hidden state, the largest intermediate (in the activation dtype), and
  // about four f32 rows of the model width alive beside it (residual stream, normed input,
  // attention output, modulation). On the accounting device (docs/cuda.md, the memory plan)
  // Wan 1.3B in bf16 measures 27.5 KB per token; this gives 42.5 KB: an upper estimate.
  const int64_t per_token = int64_t(dtype_size(activations)) * c.ffn_dim + 4 * 4 * c.dim;
  return per_token * tokens * copies;
}

int variants_per_group(int64_t bytes_per_variant, std::optional<size_t> available, int n) {
  if (!available || bytes_per_variant <= 0) return n;
  const double budget = 0.8 * double(*available);  // the rest: what the estimate does not count
  return int(std::clamp<double>(budget / double(bytes_per_variant), 1.0, double(n)));
}

int variant_group(const Pipeline::Impl& p, const GenerateRequest& r, const Resolved& rs, int n, int batch, Run& run,
                  std::vector<std::string>& notices) {
  if (batch > 0) return std::min(batch, n);
  const WanTransformer& model = *p.transformer;
  const WanConfig& c = model.config();
  const int64_t tokens = (rs.latent_frames / c.patch.t) * (rs.latent_height / c.patch.h) * (rs.latent_width / c.patch.w);
  const int copies = rs.cfg && r.batch_cfg ? 2 : 1;
  const int64_t per_variant = step_bytes_per_variant(c, model.activation_dtype(), tokens, copies);
  const Device device = p.backend->device();
  const std::optional<size_t> available = device_memory(device.type).available_bytes(device);
  int group = variants_per_group(per_variant, available, n);
  if (p.comm) {  // sequence parallel: every rank must batch the same way; the smallest wins
    int64_t negated[1] = {-int64_t(group)};
    p.comm->all_reduce_max(negated);
    group = int(-negated[0]);
  }
  if (group < n)
    run.notice("variants: " + std::to_string(group) + " of " + std::to_string(n) + " at a time, as the free memory of " +
                   device.str() + " allows (" + (available ? gigabytes(double(*available)) : "another rank's") +
                   " free, about " + gigabytes(double(per_variant)) +
                   " per variant in a denoising step); set the batch to choose",
               notices);
  return group;
}

}  // namespace reel::pipeline
