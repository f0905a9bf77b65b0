// LoRA adapters for the Wan transformer, in the layouts Wan users have (docs/lora.md):
//
//   diffusers / PEFT   transformer.blocks.3.attn1.to_q.lora_A.weight / .lora_B.weight
//   original / ComfyUI diffusion_model.blocks.3.self_attn.q.lora_down.weight / .lora_up.weight / .alpha
//   Kohya / musubi     lora_unet_blocks_3_self_attn_q.lora_down.weight / .lora_up.weight / .alpha
//   full deltas        <parameter>.diff (weights, norms, modulation), <layer>.diff_b (biases),
//                      as the lightx2v distillation releases use
//
// A low-rank pair changes a weight by strength · (alpha / rank) · up · down (alpha / rank = 1
// when the file has no `.alpha`); a full delta by strength · diff. The layout is told by the
// names; mixed files work. LoRAs are given to the loader (WanLoadOptions::loras,
// PipelineLoadOptions::loras) and either merged into the weights at load (LoraMode::merge:
// no cost per step) or kept beside them as a side path y = W·x + s·up·(down·x)
// (LoraMode::runtime: strengths change per request, e.g. GenerateRequest::lora_strengths).
//
//   reel::WanLoadOptions opt;
//   opt.loras = {{.path = "lightx2v_t2v_4step.safetensors"}, {.path = "style.safetensors", .strength = 0.8f}};
//   reel::WanTransformer dit = reel::WanTransformer::load("Wan2.1-T2V-1.3B/transformer", opt);
//   for (const reel::AppliedLora& l : dit.loras())   // what each file changed, what it could not map
//     std::printf("%s: %lld targets, %zu unmapped\n", l.spec.path.c_str(), (long long)l.targets, l.unmapped.size());
//
//   reel::LoraInfo info = reel::read_lora("style.safetensors");   // layout, rank, modules; no model needed
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "reel/export.hpp"

namespace reel {

class WeightStore;

enum class LoraLayout : uint8_t { diffusers, original, kohya };
REEL_API std::string_view lora_layout_name(LoraLayout layout);

// Which transformer of a two-expert model (Wan 2.2 A14B) a LoRA changes. One-transformer
// models accept only `both`.
enum class LoraExpert : uint8_t { both, high_noise, low_noise };

enum class LoraMode : uint8_t {
  merge,    // added into the weights at load: fastest; strengths fixed at load
  runtime,  // a side path beside the weights: strengths per request; costs 2 thin GEMMs per layer
};

struct LoraSpec {
  std::filesystem::path path;  // a safetensors file
  float strength = 1.0f;       // finite; 0 loads the LoRA without effect
  LoraExpert expert = LoraExpert::both;
};

// One adapted module of a LoRA file, as the file names it (layout prefix removed).
struct LoraModule {
  std::string name;         // e.g. "blocks.3.self_attn.q", "blocks_3_self_attn_q", "blocks.3.attn1.to_q"
  std::string down, up;     // tensor names of the low-rank factors ("" when none)
  std::string diff;         // full delta of the weight (or of the parameter itself: modulation)
  std::string diff_b;       // full delta of the bias (`.diff_b`, or PEFT's `.lora_B.bias`)
  int64_t rank = 0;         // 0 without low-rank factors
  float alpha = 0.0f;       // the file's `.alpha`; 0 when it has none
  float scale() const { return alpha > 0.0f ? alpha / float(rank) : 1.0f; }
};

struct LoraInfo {
  std::filesystem::path path;
  LoraLayout layout = LoraLayout::diffusers;  // of most modules
  std::vector<LoraModule> modules;            // sorted by name
  int64_t max_rank = 0;
  int64_t low_rank_modules = 0;  // modules with down/up factors
  int64_t delta_tensors = 0;     // .diff / .diff_b tensors
  // Tensors that are no LoRA tensor of a known kind (DoRA's dora_scale, LoCon's lora_mid, ...):
  // never applied, listed here so that nothing is ignored silently.
  std::vector<std::string> unrecognised;
};

// Reads the names, shapes and alphas (no weights). Throws what WeightStore::open throws, and
// bad_format naming the tensor for: a down without its up (or the reverse), factors whose ranks
// differ or are not matrices, an `.alpha` that is not one finite positive number, or a file
// with no LoRA tensor at all.
REEL_API LoraInfo read_lora(const std::filesystem::path& path);
REEL_API LoraInfo read_lora(const WeightStore& store, const std::filesystem::path& path);

// A LoRA as applied to one transformer.
struct AppliedLora {
  LoraSpec spec;
  LoraInfo info;
  LoraMode mode = LoraMode::merge;
  int64_t targets = 0;                 // model parameters it changes
  // Modules of the file the model has no parameter for (a LoRA for another model family, an
  // image-path LoRA on a T2V model): "name (why)".
  std::vector<std::string> unmapped;
};

}  // namespace reel
