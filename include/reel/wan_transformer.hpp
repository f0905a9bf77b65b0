// The Wan 2.1 / 2.2 diffusion transformer (diffusers' WanTransformer3DModel, reel/wan.md §1):
// T2V 1.3B/14B, I2V-14B (image context), Wan 2.2 TI2V-5B (per-token timesteps) and the A14B
// experts, loaded from the checkpoints users already have.
//
// Checkpoints: a diffusers `transformer/` folder (sharded or not, config.json optional) or one
// safetensors file with diffusers names, original Wan names, or ComfyUI's (original names under
// `model.diffusion_model.`); tensors in f32, bf16, f16 or fp8 e4m3 (ComfyUI "fp8 scaled" files
// with `<layer>.scale_weight` / `<layer>.weight_scale` are dequantised w·scale on load). The
// configuration is read from the tensor shapes (head_dim from config.json when present, else
// 128, or from WanLoadOptions::head_dim). Weights are loaded once and never change: one
// WanTransformer may be used by several threads at once; every forward() call keeps its own
// activations.
//
//   auto be = reel::make_cpu_backend();
//   reel::WanTransformer dit = reel::WanTransformer::load("Wan2.1-T2V-1.3B-Diffusers/transformer",
//                                                         {.precision = reel::WanPrecision::bf16});
//   // latents [B, 16, F, H, W], one timestep per batch item, text [B, 512, 4096] (umT5 output)
//   float t[2] = {999.0f, 999.0f};
//   reel::Tensor v = dit.forward(*be, latents, t, text_context);   // velocity [B, 16, F, H, W]
//
// Precision: WanPrecision::f32 computes everything in f32. WanPrecision::bf16 follows
// diffusers loaded with torch_dtype=bfloat16 (wan.md §1.3h): bf16 weights except the
// time embedder, the modulation tables and the LayerNorm parameters (kept f32); f32
// LayerNorms, modulation and gated residual adds; bf16 everywhere else, so its output can be
// compared with a diffusers bf16 run.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "reel/backend.hpp"
#include "reel/distributed.hpp"
#include "reel/export.hpp"
#include "reel/lora.hpp"
#include "reel/patchifier.hpp"
#include "reel/tensor.hpp"

namespace reel {

class WeightStore;

enum class WanPrecision : uint8_t { f32, bf16 };

// How the blocks' linear layers (self/cross-attention q k v o, image k v, FFN: 95 % of the
// weights) are held (docs/dit.md#quantised-weights). CPU only for now.
//   compute  in the compute dtype (bf16 or f32), whatever the file stores (GGUF dequantised);
//   q8_0     quantised at load to ggml's Q8_0 (1.25 bytes a weight as packed; bf16 is 2);
//   q4_0     quantised at load to ggml's Q4_0 (0.75 bytes a weight);
//   q4_k     quantised at load to Q4_K (0.75 bytes a weight; a scale and a min per 32 weights,
//            more accurate than Q4_0); a layer whose input width is not a multiple of 256
//            (Q4_K's super-block) takes Q8_0 instead;
//   stored   every GGUF quantisation (Q8_0, Q4_0/1, Q5_0/1, Q2_K–Q6_K) kept exactly as the
//            file stores it, never dequantised (5- and 6-bit values a byte each, the others
//            packed in 4 bits); float tensors in the compute dtype.
// Quantised layers multiply activations quantised per block of 32 on the fly (AVX-512 VNNI
// where the CPU has it, else AVX2). Embeddings, norms, modulation tables and the head stay in
// the compute dtype, and so does a layer whose input width is not a multiple of 32.
enum class WanWeightFormat : uint8_t { compute, q8_0, q4_0, stored, q4_k };
// "compute", "q8_0", "q4_0", "q4_k", "stored" (the CLI's --weight-type and the C API's weight_type).
REEL_API std::string_view weight_format_name(WanWeightFormat f);
// The format of a name above; throws invalid_argument listing them.
REEL_API WanWeightFormat parse_weight_format(std::string_view name);

// Names in the checkpoint: diffusers (`condition_embedder.*`, `blocks.N.attn1.*`) or the
// original Wan ones (`time_embedding.*`, `blocks.N.self_attn.*`), reel/wan.md §5.1.
enum class WanLayout : uint8_t { diffusers, original };

// The model's shape, read from the checkpoint (reel/wan.md §1.1).
struct WanConfig {
  int64_t dim = 0;  // D = heads · head_dim
  int64_t heads = 0;
  int64_t head_dim = 128;
  int64_t layers = 0;
  int64_t ffn_dim = 0;
  int64_t in_channels = 0;   // 16 (T2V), 36 (I2V: latents, mask, condition), 48 (TI2V-5B)
  int64_t out_channels = 0;  // 16, or 48 (TI2V-5B)
  int64_t text_dim = 0;      // 4096 (umT5-XXL)
  int64_t freq_dim = 256;    // width of the timestep sinusoid
  Patch patch{1, 2, 2};
  bool cross_attn_norm = true;  // affine LayerNorm before cross-attention
  int64_t image_dim = 0;        // > 0: the image-context path of Wan 2.1 I2V (CLIP features, 1280)
  // The Wan 2.2 TI2V-5B pipeline passes per-token timesteps (0 on the conditioning frame).
  // A hint for pipelines: forward() accepts B or B·L timesteps for every model.
  bool expand_timesteps = false;
  float eps = 1e-6f;               // LayerNorm / RMSNorm epsilon
  int64_t rope_max_seq_len = 1024; // the largest F/pt, H/ph, W/pw RoPE has positions for

  bool has_image_context() const { return image_dim > 0; }
  int64_t parameter_count() const;
  std::string str() const;  // one line, for logs and errors
};

struct WanLoadOptions {
  WanPrecision precision = WanPrecision::bf16;
  // 0: `attention_head_dim` of the folder's config.json when there is one, else 128 (every
  // released Wan model). The shapes cannot tell it: q/k norms span all heads.
  int64_t head_dim = 0;
  Device device = Device::cpu();  // where the weights live; forward() needs a backend there
  // The attention kernel for every attention call (a name from reel::attention_kernels(),
  // `reel-cli kernels`); empty: the selector's best for each call's device, dtype and shape.
  std::string attention_kernel;
  // true: tensors stored in the compute dtype are used in place, in the memory-mapped file (no
  // copy, paged in lazily); the file must then not change while the weights live: truncating it
  // faults the process. false (default): private copies, immune to changes to the file.
  bool map_weights = false;
  WanWeightFormat weight_format = WanWeightFormat::compute;
  // LoRAs (reel/lora.hpp), applied in this order; `expert` must be `both` here (the pipeline
  // routes A14B LoRAs to their expert). merge: added into the weights at load; runtime: side
  // paths whose strengths with_lora_strengths() changes.
  std::vector<LoraSpec> loras;
  LoraMode lora_mode = LoraMode::merge;
};

// Writes a Wan transformer checkpoint (what WanTransformer::load reads; fp8 scales applied) as
// a GGUF file that ComfyUI-GGUF, llama.cpp's gguf-py and reel read: original Wan names without
// a prefix, general.architecture "wan", the blocks' linear weights in `type` (q8_0 or q4_0 by
// ggml's reference quantisers; q4_k by reel's encoder, Q8_0 for rows not a multiple of 256)
// and every other tensor in F32 (the 5-D patch embedding flat
// with its comfy.gguf.orig_shape; the head_dim in reel.attention_head_dim, so that loading the
// file needs no head_dim). Written to a temporary name and renamed into place. Throws what
// load() throws, and invalid_argument for another type.
REEL_API void convert_to_gguf(const std::filesystem::path& transformer, const std::filesystem::path& out,
                              WanWeightFormat type, int64_t head_dim = 0);

// What the loader found in the checkpoint.
struct WanCheckpointInfo {
  WanLayout layout = WanLayout::diffusers;
  std::string prefix;                 // "model.diffusion_model." (ComfyUI) or ""
  std::vector<std::string> ignored;   // tensors present but not part of the model (sorted)
  int64_t fp8_tensors = 0;            // weights stored in fp8
  int64_t scaled_fp8_tensors = 0;     // ... of which came with a scale
};

class REEL_API WanTransformer {
 public:
  struct Impl;  // the typed weights and the configuration (lib/wan/wan_model.hpp)

  // A diffusers transformer folder, a sharded index, or one safetensors file. Throws
  // not_found (missing file or tensor, naming it), bad_format (a tensor with the wrong shape:
  // names it, the actual and the expected shape; not a Wan transformer; a broken file or
  // config.json), invalid_argument (a head_dim that does not divide the width), unsupported
  // (a variant reel does not run yet, e.g. FLF2V). Tensors the model does not use are ignored
  // and listed in checkpoint().ignored.
  static WanTransformer load(const std::filesystem::path& path, const WanLoadOptions& options = {});
  // From an open store; `config_json` (optional) is a diffusers config.json to read head_dim from.
  static WanTransformer load(const WeightStore& store, const WanLoadOptions& options = {},
                             const std::filesystem::path& config_json = {});
  // The configuration and layout, with every tensor checked present and shaped as load() checks
  // it (shapes only; no tensor data is read).
  static WanConfig read_config(const WeightStore& store, int64_t head_dim = 0,
                               const std::filesystem::path& config_json = {});

  explicit WanTransformer(std::shared_ptr<const Impl> impl);

  // A copy with the weights on `device` (uploaded once; the same weights when already there),
  // e.g. loaded on the host and moved to a GPU for a while. `attention_kernel` replaces the
  // kernel name (WanLoadOptions::attention_kernel) for the copy; "" selects per call.
  WanTransformer to(Device device, std::optional<std::string> attention_kernel = std::nullopt) const;

  const WanConfig& config() const;
  WanPrecision precision() const;
  DType activation_dtype() const;  // f32 or bf16
  Device device() const;
  const WanCheckpointInfo& checkpoint() const;
  // The LoRAs loaded with the model (WanLoadOptions::loras), with what each changed and the
  // strength in effect.
  const std::vector<AppliedLora>& loras() const;
  // A copy (sharing the weights) with one strength per LoRA, in loras() order. Runtime LoRAs
  // take any finite strength; a merged LoRA only the strength it was merged with
  // (invalid_argument otherwise, naming it). Costs one pass over the LoRA factors, not over
  // the weights.
  WanTransformer with_lora_strengths(std::span<const float> strengths) const;
  // Throws what with_lora_strengths() throws, without making the copy.
  void check_lora_strengths(std::span<const float> strengths) const;
  // A copy (sharing the weights) whose forward() splits the tokens over the ranks of
  // sp.comm (reel/distributed.hpp): every rank calls forward() with the same inputs and gets
  // the whole prediction. Collective: every rank calls it. Throws invalid_argument when the
  // degrees do not fit the ranks or the heads. An inactive `sp` gives a one-process copy.
  WanTransformer with_sequence_parallel(const SequenceParallel& sp) const;
  // The setting in effect (degrees resolved); no communicator in one process.
  SequenceParallel sequence_parallel() const;

  // One denoiser evaluation (diffusers WanTransformer3DModel.forward).
  //   latents        [B, in_channels, F, H, W], any float dtype, CPU or the model's device;
  //                  F, H, W multiples of the patch (1, 2, 2).
  //   timesteps      B values (one per batch item), or B·L per-token values ([B, L] row-major,
  //                  token order of reel/patchifier.hpp), in the scheduler's 0..1000 units.
  //   text_context   [B, T, text_dim] (umT5 output, any T; 512 in the pipelines).
  //   image_context  [B, N, image_dim] CLIP features (257 tokens for Wan 2.1 I2V); required by
  //                  models with the image path, rejected by the others.
  // Returns the prediction [B, out_channels, F, H, W] in activation_dtype() on the latents'
  // device: latents from the host (a sampler's) cross to the device as patch tokens and the
  // prediction comes back once, without a round trip. Throws invalid_argument naming the
  // input whose shape does not fit.
  Tensor forward(Backend& backend, const Tensor& latents, std::span<const float> timesteps,
                 const Tensor& text_context, const Tensor* image_context = nullptr) const;


 private:
  friend const Impl& wan_impl(const WanTransformer&);  // lib/wan/wan_model.hpp: the typed weights
  std::shared_ptr<const Impl> impl_;
};

}  // namespace reel
