// Readers for tests/fixtures/text/ (made by tools/reference/make_text_fixtures.py): the prompt
// and clean-up cases with transformers'/diffusers' outputs, and the encoder reference tensors.
#pragma once
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "common/test_util.hpp"
#include "reel/text_encoder.hpp"
#include "reel/weights.hpp"

namespace reel::test {

inline std::filesystem::path text_dir() { return fixtures_dir() / "text"; }

struct TokenizerCase {
  std::string prompt, cleaned;
  std::vector<int32_t> ids_64, ids_512, raw_ids;
  std::optional<std::vector<int32_t>> spm_ids;  // sentencepiece's own ids (no special tokens in the prompt)
  int64_t seq_len_64 = 0;
  bool ftfy_only = false;  // cleaned text depends on ftfy steps reel does not reproduce
};

struct CleanCase {
  std::string input, expected;
  bool ftfy_only = false;
};

struct TextCases {
  int max_length = 0;
  int64_t extra_ids = 0, spm_vocab = 0;
  std::vector<int> encoder_cases;
  std::vector<TokenizerCase> tokenizer;
  std::vector<CleanCase> clean;
  int64_t bucket_first_position = 0;
  std::vector<int64_t> buckets;
  Umt5Config config;
};

inline std::vector<int32_t> int_list(const nlohmann::json& j) { return j.get<std::vector<int32_t>>(); }

inline const TextCases& text_cases() {
  static const TextCases cases = [] {
    std::ifstream in(text_dir() / "cases.json");
    std::stringstream ss;
    ss << in.rdbuf();
    const nlohmann::json j = nlohmann::json::parse(ss.str());
    TextCases c;
    c.max_length = j["max_length"];
    c.extra_ids = j["extra_ids"];
    c.spm_vocab = j["spm_vocab"];
    c.encoder_cases = j["encoder_cases"].get<std::vector<int>>();
    for (const auto& t : j["tokenizer_cases"]) {
      TokenizerCase tc;
      tc.prompt = t["prompt"];
      tc.cleaned = t["cleaned"];
      tc.ids_64 = int_list(t["ids_64"]);
      tc.ids_512 = int_list(t["ids_512"]);
      tc.raw_ids = int_list(t["raw_ids"]);
      if (!t["spm_ids"].is_null()) tc.spm_ids = int_list(t["spm_ids"]);
      tc.seq_len_64 = t["seq_len_64"];
      tc.ftfy_only = t["ftfy_only"];
      c.tokenizer.push_back(std::move(tc));
    }
    for (const auto& t : j["clean_cases"]) c.clean.push_back({t["input"], t["expected"], t["ftfy_only"]});
    c.bucket_first_position = j["bucket_first_position"];
    c.buckets = j["buckets"].get<std::vector<int64_t>>();
    const auto& k = j["config"];
    c.config.vocab_size = k["vocab"];
    c.config.d_model = k["d_model"];
    c.config.num_heads = k["num_heads"];
    c.config.d_kv = k["d_kv"];
    c.config.d_ff = k["d_ff"];
    c.config.num_layers = k["num_layers"];
    c.config.num_buckets = k["num_buckets"];
    c.config.max_distance = k["max_distance"];
    return c;
  }();
  return cases;
}

// "ids", "mask", "last_hidden_state", "prompt_embeds", "prompt_embeds_bf16", "prompt_embeds_fp8".
inline const WeightStore& text_reference() {
  static const WeightStore store = WeightStore::open(text_dir() / "reference.safetensors");
  return store;
}

// Values of rows [0, rows) of batch item b of a [B, S, D] tensor, as doubles.
inline std::vector<double> rows_of(const Tensor& t, int64_t b, int64_t rows) {
  const Tensor r = t.select(b).slice(0, rows);
  return to_doubles(r.to(Device::cpu()));
}

}  // namespace reel::test
