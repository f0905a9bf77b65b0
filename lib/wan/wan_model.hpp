// Internal: the Wan transformer's typed weights, the pieces of its forward pass, and the
// checkpoint-name helpers shared by the loader and the config reader.
#pragma once
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "distributed/sequence_parallel.hpp"
#include "quant/qmatrix.hpp"
#include "reel/backend.hpp"
#include "reel/lora.hpp"
#include "reel/wan_transformer.hpp"
#include "reel/weights.hpp"

namespace reel::wan {

// A LoRA applied at run time (LoraMode::runtime): y += up·(down·x), the strength and
// alpha/rank already in `up`; a full delta has no `up` and `down` is the [out, in] delta.
struct SidePath {
  Tensor down;  // [rank, in] (or [out, in])
  Tensor up;    // [out, rank], or undefined
};

// y = x·weightᵀ + bias (+ the side paths); weight [out, in], bias [out]. With quantised weights
// (WanWeightFormat) `weight` is undefined and `quantised` holds them.
struct Linear {
  Tensor weight;
  Tensor bias;
  std::vector<SidePath> side_paths;
  std::shared_ptr<const quant::QMatrix> quantised;
};

// LayerNorm parameters (f32 in every precision).
struct Affine {
  Tensor weight;
  Tensor bias;
};

struct BlockWeights {
  Tensor modulation;            // [1, 6, D] f32: shift/scale/gate (attention), shift/scale/gate (FFN)
  Linear q, k, v, o;            // self-attention
  Tensor norm_q, norm_k;        // [D] RMSNorm across heads
  Linear cross_q, cross_k, cross_v, cross_o;
  Tensor cross_norm_q, cross_norm_k;
  Linear image_k, image_v;      // image context (I2V): add_k_proj / add_v_proj
  Tensor image_norm_k;          // norm_added_k
  Affine cross_norm;            // norm2 (original: norm3), before cross-attention
  Linear ffn_in, ffn_out;       // GELU(tanh) MLP
};

struct WanWeights {
  Linear patch;                 // weight [D, C·pt·ph·pw]: the Conv3d weight flattened (channel-major)
  Linear time_in, time_out;     // time embedder, f32
  Linear time_proj;             // [6D, D]
  Linear text_in, text_out;     // text embedder (GELU tanh between)
  Affine image_norm_in;         // image embedder (I2V): LayerNorm(image_dim, eps 1e-5)
  Linear image_in, image_out;   // Linear → GELU(erf) → Linear
  Affine image_norm_out;        // LayerNorm(D, eps 1e-5)
  std::vector<BlockWeights> blocks;
  Tensor head_modulation;       // [1, 2, D] f32: shift, scale
  Linear head;                  // proj_out [out·pt·ph·pw, D]
};

// Which parameter of the model: a row of the name table (wan_weights.cpp) and a block index.
struct ParamRef {
  int entry = -1;
  int64_t block = -1;
};

// One change a LoRA makes to one parameter, f32 on the host.
struct LoraDelta {
  ParamRef target;
  size_t lora = 0;      // index into WanTransformer::loras()
  Tensor down, up;      // low rank: [rank, in], [out, rank]
  Tensor full;          // or a full delta, the parameter's stored shape
  float scale = 1.0f;   // alpha / rank
};

struct RopeTables {
  Tensor cos, sin;  // [L, head_dim] f32, each value repeated for the two members of a pair
};

// The RoPE tables of the last few token grids, on the model's device: built on the host and
// uploaded once per grid instead of once per forward. Thread-safe.
class RopeCache {
 public:
  RopeTables get(const WanConfig& config, const PatchGrid& grid, Device device);

 private:
  struct Entry {
    int64_t frames, height, width;
    Device device;
    RopeTables tables;
  };
  static constexpr size_t kEntries = 4;
  std::mutex mutex_;
  std::vector<Entry> entries_;  // most recently used last
};

}  // namespace reel::wan

namespace reel {

struct WanTransformer::Impl {
  WanConfig config;
  WanPrecision precision = WanPrecision::bf16;
  Device device = Device::cpu();
  WanCheckpointInfo checkpoint;
  wan::WanWeights weights;
  std::string attention_kernel;  // empty: the selector's choice
  std::shared_ptr<wan::RopeCache> rope_cache = std::make_shared<wan::RopeCache>();
  // LoRAs (wan_lora.cpp). Runtime ones: `weights` = `base` + the deltas at `strengths`.
  std::vector<AppliedLora> loras;
  std::shared_ptr<const std::vector<wan::LoraDelta>> runtime_deltas;
  wan::WanWeights base;
  // Sequence parallel (with_sequence_parallel): the ranks' arrangement; null in one process.
  std::shared_ptr<const dist::SpGroups> sp;
};

// The loaded model's typed weights and configuration (tests read the weights through it).
inline const WanTransformer::Impl& wan_impl(const WanTransformer& t) { return *t.impl_; }

}  // namespace reel

namespace reel::wan {

DType activation_dtype(WanPrecision p);

// ---------------------------------------------------------------- checkpoint names (wan_weights.cpp)

struct CheckpointNames {
  WanLayout layout = WanLayout::diffusers;
  std::string prefix;
};

// Finds the prefix and the layout from the tensor names. Throws bad_format when the store
// holds no Wan transformer (or holds both layouts).
CheckpointNames detect_names(const WeightStore& store);

// The checkpoint name of a parameter given by its diffusers name (`{}` stands for the block
// index), e.g. key "blocks.{}.attn1.to_q.weight", block 3 → "model.diffusion_model.blocks.3.self_attn.q.weight".
std::string checkpoint_name(const CheckpointNames& names, std::string_view key, int64_t block = -1);

// Every parameter of a model of this configuration, in table order: its diffusers key ("{}" for
// the block), the block (-1 for top-level ones), its shape, and whether it is the weight of
// one of the blocks' linear layers.
void for_each_param(const WanConfig& config,
                    const std::function<void(std::string_view key, int64_t block, const Shape& shape, bool block_linear)>& fn);

// What load_weights checks before it reads anything: every tensor present with its shape.
// inspect runs the same (through WanTransformer::read_config).
void check_weights(const WeightStore& store, const CheckpointNames& names, const WanConfig& config);

// Reads every tensor of the model into typed members (shape-checked, converted, fp8
// dequantised). Fills info.ignored / fp8 counts.
// WanWeightFormat::stored: the blocks' linear layers whose GGUF type the kernel takes are read
// as they are stored (never dequantised), other quantised ones re-quantised to Q8_0 as read.
WanWeights load_weights(const WeightStore& store, const CheckpointNames& names, const WanConfig& config,
                        WanPrecision precision, Device device, bool map, WanCheckpointInfo& info,
                        WanWeightFormat format = WanWeightFormat::compute);

// Random weights of the right shapes (values in ±1/sqrt(fan_in), norms near 1), for benchmarks
// and shape tests; made in memory, nothing read from disk.
WanWeights random_weights(const WanConfig& config, WanPrecision precision, uint64_t seed);
// A copy of every weight on `device` (one upload each).
WanWeights weights_on(const WanWeights& w, const WanConfig& config, Device device);
// Throws not_found (listing the kernels) or invalid_argument (a kernel for another device type).
void check_attention_kernel(const std::string& name, Device device);

// What a LoRA module name can stand for.
enum class ParamKind : uint8_t { weight, bias, whole };  // `<m>.weight`, `<m>.bias`, `<m>` (modulation)
// The parameter a LoRA module names in any layout (diffusers, original, Kohya's underscores);
// nullopt when the model has none (`why` says: unknown name, or a path this model lacks).
std::optional<ParamRef> find_param(std::string_view module, ParamKind kind, const WanConfig& config, std::string* why);
Tensor& param(WanWeights& w, ParamRef ref);
const Tensor& param(const WanWeights& w, ParamRef ref);
Linear* linear_of(WanWeights& w, ParamRef ref);  // nullptr: not the weight of a Linear
const Linear* linear_of(const WanWeights& w, ParamRef ref);
bool is_linear_weight(ParamRef ref);
std::string param_name(ParamRef ref);  // the diffusers name, e.g. "blocks.3.attn1.to_q.weight"

// The blocks' linear layers still in a float dtype quantised to `type`, their weight tensors
// freed. Layers whose input width is not a multiple of 32 stay as they are; with Q4_K, those
// whose width is not a multiple of 256 take Q8_0. Host weights only.
void quantize_block_linears(WanWeights& w, const WanConfig& config, quant::QType type);
// The type a weight format quantises to at load (q8_0, q4_0, q4_k); nullopt for compute, stored.
std::optional<quant::QType> load_qtype(WanWeightFormat format);

// y = x·Wᵀ + b + the layer's side paths; out dtype as ops::linear.
Tensor linear(Backend& be, const Tensor& x, const Linear& l, std::optional<DType> out_dtype = std::nullopt);

// ---------------------------------------------------------------- LoRA (wan_lora.cpp)

// Reads the LoRAs' tensors for this model: every module mapped (or listed in unmapped), every
// shape checked. Returns the deltas; fills `applied` (one per spec).
std::vector<LoraDelta> read_lora_deltas(std::span<const LoraSpec> specs, LoraMode mode, const WanConfig& config,
                                        const WanWeights& weights, std::vector<AppliedLora>& applied);
// Adds strength · delta into the host weights (LoraMode::merge): in place into tensors that are
// not read-only (so they must not be shared: the loader's fresh copies), into new tensors for
// memory-mapped ones.
void merge_lora_deltas(WanWeights& w, std::span<const LoraDelta> deltas, std::span<const AppliedLora> loras);
// `base` with the deltas at `strengths` (one per LoRA) as side paths and changed small tensors
// on `device` (LoraMode::runtime).
WanWeights compose_lora_deltas(const WanWeights& base, std::span<const LoraDelta> deltas,
                               std::span<const float> strengths, Device device);

// ---------------------------------------------------------------- config (wan_config.cpp)

// config.json next to the weights of a diffusers folder (or in the folder of a single file);
// empty when there is none.
std::filesystem::path find_config_json(const std::filesystem::path& path);

// The GGUF metadata key convert_to_gguf records the head_dim under (the shapes cannot tell it).
inline constexpr std::string_view kGgufHeadDimKey = "reel.attention_head_dim";

// Reads the configuration from the shapes; head_dim from the option, config.json, the
// kGgufHeadDimKey of a GGUF file reel wrote, or 128.
WanConfig detect_config(const WeightStore& store, const CheckpointNames& names, int64_t head_dim_option,
                        const std::filesystem::path& config_json);

// ---------------------------------------------------------------- RoPE (wan_rope.cpp)

// The per-token tables of wan.md §1.3a for the token grid (split t/h/w = d−4⌊d/6⌋, 2⌊d/6⌋, 2⌊d/6⌋).
RopeTables rope_tables(const WanConfig& config, const PatchGrid& grid);

// ---------------------------------------------------------------- embeddings (wan_embed.cpp)

// The sinusoid of diffusers' Timesteps(freq_dim, flip_sin_to_cos=True, shift 0): [N, freq_dim]
// f32 on the CPU, [cos | sin].
Tensor timestep_sinusoid(std::span<const float> timesteps, int64_t freq_dim);

struct TimeEmbedding {
  Tensor temb;        // [U, D] activation dtype (diffusers rounds it to the model dtype)
  Tensor projection;  // [U, 6·D] activation dtype: time_proj(SiLU(temb))
};
// For the U distinct timestep values.
TimeEmbedding embed_timesteps(Backend& be, const WanWeights& w, std::span<const float> unique_timesteps,
                              DType act);
// [B, T, text_dim] → [B, T, D] activation dtype.
Tensor embed_text(Backend& be, const WanWeights& w, const Tensor& text, DType act);
// [B, N, image_dim] → [B, N, D] activation dtype.
Tensor embed_image(Backend& be, const WanWeights& w, const Tensor& image, DType act);

// ---------------------------------------------------------------- blocks (wan_block.cpp)

// A run of tokens [begin, end) of batch item `batch` that share one timestep (index into the
// unique timesteps). Scalar timesteps give one segment per batch item; TI2V-5B gives two
// (the conditioning frame and the rest).
struct Segment {
  int64_t batch, begin, end, timestep;
};

struct BlockInputs {
  const Tensor* context;        // [B, T, D] text
  const Tensor* image_context;  // [B, N, D] or null
  const Tensor* projection;     // [U, 6·D] timestep projection
  const RopeTables* rope;
  std::span<const Segment> segments;
  std::string_view attention_kernel;  // empty: the selector's choice
  dist::SpForward* sequence_parallel = nullptr;  // self-attention over every rank's tokens
};

// out = x after block `blk` (x [B, L, D] activation dtype).
Tensor block_forward(Backend& be, const WanConfig& cfg, const BlockWeights& blk, const Tensor& x,
                     const BlockInputs& in);

// out[seg] = LN(x[seg]) · (1 + scale[u]) + shift[u] in f32, stored as out's dtype, for every
// segment; table [U, rows, D] f32 holds the modulation rows (shift at row `shift_row`, scale at
// `shift_row + 1`).
void layer_norm_modulate(Backend& be, const Tensor& x, const Tensor& table, int shift_row,
                         std::span<const Segment> segments, float eps, Tensor& out);

}  // namespace reel::wan
