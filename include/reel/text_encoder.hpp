// The umT5 text encoder of the Wan models and its SentencePiece tokenizer (wan.md §4.3, §6).
//
// Prompt → clean-up → token ids (umT5 rules: `</s>` appended, padded with 0 or truncated to
// max_length) → umT5 encoder → prompt embeddings [B, max_length, d_model] whose rows past each
// prompt's length are exactly zero. The tokenizer and the encoder are usable on their own:
// applications that bring their own prompt embeddings skip both.
//
//   auto tok = reel::Umt5Tokenizer::open("Wan2.1-T2V-1.3B-Diffusers/tokenizer");
//   auto enc = reel::Umt5Encoder::load("Wan2.1-T2V-1.3B-Diffusers/text_encoder", {.dtype = reel::DType::bf16});
//   auto cpu = reel::make_cpu_backend();
//   std::vector<reel::TokenizedPrompt> batch = {tok.encode("a cat runs"), tok.encode("")};
//   reel::Tensor context = enc.encode(*cpu, batch);   // [2, 512, 4096] f32
#pragma once
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "reel/backend.hpp"
#include "reel/export.hpp"
#include "reel/tensor.hpp"

namespace reel {

class WeightStore;

// ------------------------------------------------------------------------------- tokenizer

// The Wan pipelines' prompt clean-up (diffusers `prompt_clean`): the reproducible part of
// ftfy.fix_text, html.unescape twice, strip, whitespace runs → one space. What of ftfy is and
// is not reproduced is listed in docs/text_encoder.md. Throws invalid_argument on malformed UTF-8.
REEL_API std::string clean_prompt(std::string_view utf8);

struct TokenizerOptions {
  int max_length = 512;  // ids are padded or truncated to this length (`</s>` always kept)
  bool clean = true;     // run clean_prompt first (the Wan pipelines do)
  // transformers' T5 tokenizers (the Wan reference) turn SentencePiece's byte-fallback pieces
  // into one <unk> per unknown span; false keeps the byte pieces (sentencepiece's own output).
  bool bytes_as_unk = true;
};

struct TokenizedPrompt {
  std::vector<int32_t> ids;  // max_length ids: tokens, `</s>`, then padding
  int64_t length = 0;        // valid ids including `</s>` (the attention mask's sum), ≥ 1

  std::vector<int32_t> attention_mask() const;  // 1 for the first `length` ids, else 0
};

// SentencePiece unigram tokenizer with the T5/umT5 conventions (<pad>=0, </s>=1, <unk>=2 from
// the model file, `<extra_id_N>` sentinels numbered down from the top of the vocabulary).
// Immutable after open(); safe to share between threads.
class REEL_API Umt5Tokenizer {
 public:
  // `path`: a spiece.model file, or a folder holding spiece.model (a diffusers model folder's
  // tokenizer/ or the model folder itself). The sentinel count comes from tokenizer_config.json
  // beside it ("extra_ids", else the <extra_id_N> entries of "additional_special_tokens"),
  // 0 without one. Throws not_found naming the path, bad_format for an unreadable model.
  static Umt5Tokenizer open(const std::filesystem::path& path);

  // Ids for one prompt (clean-up, special tokens, SentencePiece, `</s>`, padding).
  TokenizedPrompt encode(std::string_view prompt, const TokenizerOptions& options = {}) const;
  // Token ids only: no `</s>`, padding or truncation.
  std::vector<int32_t> tokenize(std::string_view text, const TokenizerOptions& options = {}) const;

  int64_t vocab_size() const;  // SentencePiece pieces + sentinels
  int64_t extra_ids() const;
  int32_t pad_id() const;
  int32_t eos_id() const;
  int32_t unk_id() const;

 private:
  Umt5Tokenizer() = default;  // only open() makes one: a tokenizer always has a model
  struct Impl;
  std::shared_ptr<const Impl> impl_;
};

// ------------------------------------------------------------------------------- encoder

// umT5 encoder hyper-parameters, read from the weights' shapes (config.json only adds the
// bucket distance and epsilon). umT5-XXL: vocab 256384, d_model 4096, 64 heads × 64, d_ff 10240,
// 24 layers, 32 buckets, max distance 128.
struct Umt5Config {
  int64_t vocab_size = 0;
  int64_t d_model = 0;
  int64_t num_heads = 0;
  int64_t d_kv = 0;
  int64_t d_ff = 0;
  int64_t num_layers = 0;
  int64_t num_buckets = 32;
  int64_t max_distance = 128;
  float eps = 1e-6f;

  int64_t inner_dim() const { return num_heads * d_kv; }
};

// Bidirectional relative-position bucket (T5 `_relative_position_bucket`, wan.md §6) for
// rp = key position − query position. The log branch is computed in f32, as transformers does.
inline int64_t umt5_relative_bucket(int64_t rp, int64_t num_buckets = 32, int64_t max_distance = 128) {
  const int64_t half = num_buckets / 2;
  int64_t bucket = rp > 0 ? half : 0;
  const int64_t a = rp < 0 ? -rp : rp;
  const int64_t max_exact = half / 2;
  if (a < max_exact) return bucket + a;
  const float ratio = std::log(float(a) / float(max_exact)) / float(std::log(double(max_distance) / double(max_exact)));
  const int64_t large = max_exact + int64_t(ratio * float(half - max_exact));
  return bucket + (large < half - 1 ? large : half - 1);
}

// Checks a checkpoint's tensor shapes (checkpoint names: diffusers/transformers or ComfyUI
// `shared.weight`, `encoder.block.N.…` with any prefix, or the original Wan `token_embedding…`,
// `blocks.N.…`) against the umT5 architecture and returns the config. Throws bad_format naming
// the tensor that is missing or has the wrong shape. Allocates nothing.
REEL_API Umt5Config umt5_config_from_shapes(const std::map<std::string, Shape>& shapes);

struct Umt5LoadOptions {
  // Weight dtype: bf16 (the usual), f32, or f16 (then `wo` is kept in f32, as transformers
  // does for umT5). Whatever the file holds (f32, bf16, f16, fp8 with or without a per-tensor
  // `scale_weight`) is converted.
  DType dtype = DType::bf16;
  Device device = Device::cpu();
  // true: tensors stored in the compute dtype are used in place, in the memory-mapped file (no
  // copy, paged in lazily); the file must then not change while the weights live: truncating it
  // faults the process. false (default): private copies, immune to changes to the file.
  bool map_weights = false;
};

// Weights are immutable after load; encode/forward may run concurrently on different backends.
class REEL_API Umt5Encoder {
 public:
  // `path`: a safetensors file, a sharded index, or a folder (diffusers `text_encoder/`, whose
  // config.json is read when present). Pickle checkpoints (.pth) are refused by WeightStore.
  static Umt5Encoder load(const std::filesystem::path& path, const Umt5LoadOptions& options = {});
  // `config_json`: optional path of a transformers config.json to cross-check and read
  // relative_attention_max_distance / layer_norm_epsilon from.
  static Umt5Encoder load(const WeightStore& store, const Umt5LoadOptions& options = {},
                          const std::filesystem::path& config_json = {});

  const Umt5Config& config() const;
  DType dtype() const;

  // The Wan prompt embeddings (wan.md §4.3): [B, L, d_model] f32 on the backend's device, L the
  // prompts' common max_length; rows ≥ each prompt's length are exactly zero. Runs the encoder
  // on each prompt's valid ids only (padded keys are masked, so they contribute nothing).
  Tensor encode(Backend& be, std::span<const TokenizedPrompt> prompts) const;

  // transformers' UMT5EncoderModel(ids, attention_mask).last_hidden_state: ids and mask [B, S]
  // i32 (mask 0/1) on the CPU; every row is computed over all S positions with masked keys.
  // Rows of padded positions are returned as computed (not zeroed). Returns f32 [B, S, d_model].
  Tensor forward(Backend& be, const Tensor& ids, const Tensor& mask) const;

  struct Impl;  // the typed weights and the config (lib/text/umt5_model.hpp)
  explicit Umt5Encoder(std::shared_ptr<const Impl> impl);

 private:
  std::shared_ptr<const Impl> impl_;
};

}  // namespace reel
