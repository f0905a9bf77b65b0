// Umt5Encoder against transformers' UMT5EncoderModel (tiny random-weight model of
// tools/reference/make_text_fixtures.py: d_model 64, 3 layers, 4 heads × 16, d_ff 96, strong
// per-layer relative biases) run with the attention mask as the Wan pipeline runs it; the
// diffusers folder (sharded, f32), the ComfyUI fp8-scaled file, the original Wan names; f32,
// bf16 and f16; the trimmed (valid tokens only) path against the full masked one.
#include <gtest/gtest.h>

#include <sstream>

#include "text/text_fixtures.hpp"

namespace reel {
namespace {

std::string sci(double v) {
  std::ostringstream s;
  s << std::scientific << v;
  return s.str();
}

class Umt5Fixture : public ::testing::Test {
 protected:
  std::unique_ptr<Backend> be = make_cpu_backend({.threads = 2});

  static const Umt5Tokenizer& tokenizer() {
    static const Umt5Tokenizer t = Umt5Tokenizer::open(test::text_dir() / "tokenizer");
    return t;
  }
  // The encoder cases tokenized by reel (checked against the reference ids).
  static std::vector<TokenizedPrompt> prompts() {
    const test::TextCases& c = test::text_cases();
    const Tensor ref_ids = test::text_reference().load("ids", DType::f32);
    std::vector<TokenizedPrompt> out;
    for (size_t b = 0; b < c.encoder_cases.size(); ++b) {
      TokenizedPrompt p = tokenizer().encode(c.tokenizer[size_t(c.encoder_cases[b])].prompt, {.max_length = c.max_length});
      const std::vector<float> want = ref_ids.select(int64_t(b)).to_floats();
      for (size_t i = 0; i < p.ids.size(); ++i) EXPECT_EQ(float(p.ids[i]), want[i]) << "prompt " << b << " id " << i;
      out.push_back(std::move(p));
    }
    return out;
  }
  static Tensor reference(const char* name) { return test::text_reference().load(name, DType::f32); }

  // Relative L2 error of each prompt's valid rows; padded rows must be exactly zero.
  static double max_error(const Tensor& out, const Tensor& ref, const std::vector<TokenizedPrompt>& ps) {
    EXPECT_EQ(out.shape(), ref.shape());
    double worst = 0;
    for (size_t b = 0; b < ps.size(); ++b) {
      const int64_t n = ps[b].length;
      worst = std::max(worst, test::relative_l2(test::rows_of(out, int64_t(b), n), test::rows_of(ref, int64_t(b), n)));
      const std::vector<float> pad = out.select(int64_t(b)).slice(n, out.dim(1)).to_floats();
      for (float v : pad) EXPECT_EQ(v, 0.0f) << "row past the prompt length must be exactly zero (prompt " << b << ")";
    }
    return worst;
  }
};

TEST(Umt5Bucket, MatchesTransformersForEveryOffset) {
  const test::TextCases& c = test::text_cases();
  ASSERT_EQ(c.buckets.size(), 601u);
  for (size_t i = 0; i < c.buckets.size(); ++i) {
    const int64_t rp = c.bucket_first_position + int64_t(i);
    EXPECT_EQ(umt5_relative_bucket(rp, 32, 128), c.buckets[i]) << "relative position " << rp;
  }
}

TEST_F(Umt5Fixture, ConfigReadFromTheWeights) {
  const Umt5Encoder enc = Umt5Encoder::load(test::text_dir() / "text_encoder", {.dtype = DType::f32});
  const Umt5Config& got = enc.config();
  const Umt5Config& want = test::text_cases().config;
  EXPECT_EQ(got.vocab_size, want.vocab_size);
  EXPECT_EQ(got.d_model, want.d_model);
  EXPECT_EQ(got.num_heads, want.num_heads);
  EXPECT_EQ(got.d_kv, want.d_kv);
  EXPECT_EQ(got.d_ff, want.d_ff);
  EXPECT_EQ(got.num_layers, want.num_layers);
  EXPECT_EQ(got.num_buckets, want.num_buckets);
  EXPECT_EQ(got.max_distance, want.max_distance);
  EXPECT_EQ(enc.dtype(), DType::f32);
  EXPECT_EQ(tokenizer().vocab_size(), got.vocab_size);
}

// f32: the same computation as transformers' in f32 up to summation order (GEMM blocking,
// RMS-norm partial sums, softmax). 3 layers of reductions over K ≤ 96 add relative errors of
// order K·2^-24 ≈ 1e-6 each; the brief's bound is 1e-4. A missing 1/√d_kv (wrong scaling),
// a wrong bucket or an unmasked padded key is ≥ 1e-2.
TEST_F(Umt5Fixture, F32MatchesTransformers) {
  const std::vector<TokenizedPrompt> ps = prompts();
  const Umt5Encoder enc = Umt5Encoder::load(test::text_dir() / "text_encoder", {.dtype = DType::f32});
  const Tensor out = enc.encode(*be, ps);
  ASSERT_EQ(out.dtype(), DType::f32);
  const double err = max_error(out, reference("prompt_embeds"), ps);
  EXPECT_LE(err, 1e-4) << sci(err);
  std::cout << "f32 encode vs transformers: max relative L2 " << sci(err) << "\n";
}

// forward() is UMT5EncoderModel's last_hidden_state, padded rows included (they attend to the
// valid keys only, with their own relative positions), so every row is compared.
TEST_F(Umt5Fixture, ForwardMatchesLastHiddenStateIncludingPaddedRows) {
  const Umt5Encoder enc = Umt5Encoder::load(test::text_dir() / "text_encoder", {.dtype = DType::f32});
  const Tensor ids_f = reference("ids"), mask_f = reference("mask");
  std::vector<float> idv = ids_f.to_floats(), mv = mask_f.to_floats();
  Tensor ids = Tensor::empty(ids_f.shape(), DType::i32), mask = Tensor::empty(mask_f.shape(), DType::i32);
  for (size_t i = 0; i < idv.size(); ++i) {
    ids.data<int32_t>()[i] = int32_t(idv[i]);
    mask.data<int32_t>()[i] = int32_t(mv[i]);
  }
  const Tensor out = enc.forward(*be, ids, mask);
  const double err = test::relative_l2(test::to_doubles(out), test::to_doubles(reference("last_hidden_state")));
  EXPECT_LE(err, 1e-4) << sci(err);  // same derivation as F32MatchesTransformers
}

// The trimmed path (encode: the valid tokens only) and the full masked path (forward, then the
// §4.3 zeroing) are the same mathematics: exp(finfo.min − max) is exactly 0 in f32, so masked
// keys add exactly nothing. Only GEMM blocking may differ with the sequence length: relative
// differences of order K·2^-24 ≈ 1e-6.
TEST_F(Umt5Fixture, TrimmedEqualsFullMaskedRun) {
  const std::vector<TokenizedPrompt> ps = prompts();
  const Umt5Encoder enc = Umt5Encoder::load(test::text_dir() / "text_encoder", {.dtype = DType::f32});
  const Tensor trimmed = enc.encode(*be, ps);
  const int64_t b = int64_t(ps.size()), s = int64_t(ps[0].ids.size());
  Tensor ids = Tensor::empty({b, s}, DType::i32), mask = Tensor::empty({b, s}, DType::i32);
  for (int64_t i = 0; i < b; ++i) {
    const std::vector<int32_t> m = ps[size_t(i)].attention_mask();
    std::copy(ps[size_t(i)].ids.begin(), ps[size_t(i)].ids.end(), ids.data<int32_t>() + i * s);
    std::copy(m.begin(), m.end(), mask.data<int32_t>() + i * s);
  }
  const Tensor full = enc.forward(*be, ids, mask);
  for (int64_t i = 0; i < b; ++i) {
    const int64_t n = ps[size_t(i)].length;
    const double err = test::relative_l2(test::rows_of(trimmed, i, n), test::rows_of(full, i, n));
    EXPECT_LE(err, 1e-5) << "prompt " << i << ": " << sci(err);
  }
  // And the mask matters: without it the padded keys change the valid rows.
  Tensor ones = Tensor::empty({b, s}, DType::i32);
  for (int64_t i = 0; i < b * s; ++i) ones.data<int32_t>()[i] = 1;
  const Tensor unmasked = enc.forward(*be, ids, ones);
  const double change = test::relative_l2(test::rows_of(unmasked, 1, ps[1].length), test::rows_of(full, 1, ps[1].length));
  EXPECT_GT(change, 1e-2) << "padded keys must be masked";
}

// bf16 weights (exact: the fixture's values are bf16-representable) with bf16 GEMM inputs.
// Bound from a same-precision reference: transformers' own bf16 run differs from its f32 run
// by e_ref; reel keeps the residual stream and attention in f32, so it rounds less and must
// stay within 2·e_ref (DESIGN.md's rule for reduced precision).
TEST_F(Umt5Fixture, Bf16WithinTheSamePrecisionReference) {
  const std::vector<TokenizedPrompt> ps = prompts();
  const Tensor ref = reference("prompt_embeds");
  double e_ref = 0;
  for (size_t b = 0; b < ps.size(); ++b)
    e_ref = std::max(e_ref, test::relative_l2(test::rows_of(reference("prompt_embeds_bf16"), int64_t(b), ps[b].length),
                                              test::rows_of(ref, int64_t(b), ps[b].length)));
  ASSERT_GT(e_ref, 1e-4) << "the bf16 reference should show bf16 rounding";
  const Umt5Encoder enc = Umt5Encoder::load(test::text_dir() / "text_encoder", {.dtype = DType::bf16});
  EXPECT_EQ(enc.dtype(), DType::bf16);
  const double err = max_error(enc.encode(*be, ps), ref, ps);
  EXPECT_LE(err, 2 * e_ref) << "reel bf16 " << sci(err) << " vs transformers bf16 " << sci(e_ref);
  std::cout << "bf16: reel " << sci(err) << ", transformers bf16 " << sci(e_ref) << " (relative L2 vs f32)\n";
  // f16 has 3 more mantissa bits than bf16 (unit roundoff 8x smaller), with `wo` in f32 as
  // transformers keeps it: its error must stay below the bf16 reference's.
  const Umt5Encoder enc16 = Umt5Encoder::load(test::text_dir() / "text_encoder", {.dtype = DType::f16});
  const double err16 = max_error(enc16.encode(*be, ps), ref, ps);
  EXPECT_LE(err16, e_ref) << sci(err16);
}

// ComfyUI "fp8 scaled" single file: linear weights float8_e4m3fn with a per-tensor
// `scale_weight`, the `scaled_fp8` marker, f16 embedding. Reference: transformers in f32 with the
// dequantised weights, so the bound is the f32 one.
TEST_F(Umt5Fixture, ComfyFp8ScaledFileMatchesDequantisedReference) {
  const std::vector<TokenizedPrompt> ps = prompts();
  const Umt5Encoder enc = Umt5Encoder::load(test::text_dir() / "umt5_fp8_scaled.safetensors", {.dtype = DType::f32});
  const double err = max_error(enc.encode(*be, ps), reference("prompt_embeds_fp8"), ps);
  EXPECT_LE(err, 1e-4) << sci(err);
  // The scales are applied: the fp8 output is not the unquantised one.
  const Umt5Encoder plain = Umt5Encoder::load(test::text_dir() / "text_encoder", {.dtype = DType::f32});
  EXPECT_GT(max_error(enc.encode(*be, ps), reference("prompt_embeds"), ps), 1e-3);
}

// Writes the fixture weights under other names (original Wan layout, or a prefix), as f32.
std::filesystem::path renamed_copy(const std::string& file, const std::string& prefix, bool wan_names) {
  const WeightStore src = WeightStore::open(test::text_dir() / "text_encoder");
  std::vector<std::pair<std::string, Tensor>> out;
  auto rename = [&](std::string n) {
    if (!wan_names) return prefix + n;
    auto swap = [&](const std::string& from, const std::string& to) {
      if (const size_t at = n.find(from); at != std::string::npos) n.replace(at, from.size(), to);
    };
    swap("shared.weight", "token_embedding.weight");
    swap("encoder.final_layer_norm.weight", "norm.weight");
    swap("encoder.block.", "blocks.");
    swap(".layer.0.SelfAttention.relative_attention_bias.", ".pos_embedding.embedding.");
    swap(".layer.0.SelfAttention.", ".attn.");
    swap(".layer.0.layer_norm.", ".norm1.");
    swap(".layer.1.layer_norm.", ".norm2.");
    swap(".layer.1.DenseReluDense.wi_0.", ".ffn.gate.0.");
    swap(".layer.1.DenseReluDense.wi_1.", ".ffn.fc1.");
    swap(".layer.1.DenseReluDense.wo.", ".ffn.fc2.");
    return prefix + n;
  };
  for (const std::string& n : src.names()) out.emplace_back(rename(n), src.load(n, DType::f32));
  const std::filesystem::path path = test::tmp_dir() / file;
  save_safetensors(path, out);
  return path;
}

// The same numbers under the original Wan names (wan.md §5.3) or behind a ComfyUI-style prefix
// load into the same model: bit-identical outputs.
TEST_F(Umt5Fixture, OtherLayoutsLoadTheSameModel) {
  const std::vector<TokenizedPrompt> ps = prompts();
  const Tensor base =
      Umt5Encoder::load(test::text_dir() / "text_encoder", {.dtype = DType::f32}).encode(*be, ps);
  for (const auto& [file, prefix, wan] :
       {std::tuple{"umt5_wan_names.safetensors", "", true}, std::tuple{"umt5_prefixed.safetensors", "text_encoders.umt5xxl.transformer.", false},
        std::tuple{"umt5_wan_prefixed.safetensors", "text_encoder.", true}}) {
    const Umt5Encoder enc = Umt5Encoder::load(renamed_copy(file, prefix, wan), {.dtype = DType::f32});
    EXPECT_EQ(test::max_abs_diff(test::to_doubles(enc.encode(*be, ps)), test::to_doubles(base)), 0.0) << file;
  }
}

TEST_F(Umt5Fixture, BadInputsAreRejected) {
  const Umt5Encoder enc = Umt5Encoder::load(test::text_dir() / "text_encoder", {.dtype = DType::f32});
  TokenizedPrompt p = tokenizer().encode("a cat", {.max_length = 16});
  p.ids[1] = int32_t(enc.config().vocab_size);  // past the vocabulary
  try {
    (void)enc.encode(*be, std::vector<TokenizedPrompt>{p});
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("position 1"), std::string::npos) << e.what();
  }
  const std::vector<TokenizedPrompt> mixed = {tokenizer().encode("a", {.max_length = 16}),
                                              tokenizer().encode("b", {.max_length = 8})};
  EXPECT_THROW((void)enc.encode(*be, mixed), Error);
  EXPECT_THROW((void)enc.encode(*be, std::vector<TokenizedPrompt>{}), Error);
  TokenizedPrompt zero = tokenizer().encode("a", {.max_length = 8});
  zero.length = 0;
  EXPECT_THROW((void)enc.encode(*be, std::vector<TokenizedPrompt>{zero}), Error);
  const Tensor f = Tensor::zeros({1, 4}, DType::f32);
  EXPECT_THROW((void)enc.forward(*be, f, f), Error);  // ids must be i32
  EXPECT_THROW((void)Umt5Encoder::load(test::text_dir() / "text_encoder", {.dtype = DType::i32}), Error);
}

// config.json beside the weights is cross-checked against the shapes and gates the activation.
TEST_F(Umt5Fixture, ConfigJsonIsCrossChecked) {
  const WeightStore store = WeightStore::open(test::text_dir() / "text_encoder");
  const std::filesystem::path cfg = test::tmp_dir() / "umt5_config_heads.json";
  {
    std::ofstream(cfg) << R"({"num_heads": 8, "d_kv": 8, "feed_forward_proj": "gated-gelu"})";
  }
  try {
    (void)Umt5Encoder::load(store, {.dtype = DType::f32}, cfg);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::bad_format);
    EXPECT_NE(std::string(e.what()).find("num_heads"), std::string::npos) << e.what();
  }
  {
    std::ofstream(cfg) << R"({"feed_forward_proj": "relu"})";
  }
  try {
    (void)Umt5Encoder::load(store, {.dtype = DType::f32}, cfg);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::unsupported);
  }
}

// A checkpoint file whose tensor has the wrong shape is refused before anything is loaded.
TEST_F(Umt5Fixture, MalformedFileNamesTheTensor) {
  const WeightStore src = WeightStore::open(test::text_dir() / "text_encoder");
  const std::string bad = "encoder.block.2.layer.1.DenseReluDense.wi_1.weight";
  std::vector<std::pair<std::string, Tensor>> out;
  for (const std::string& n : src.names())
    out.emplace_back(n, n == bad ? test::random_tensor({95, 64}, 3) : src.load(n, DType::f32));
  const std::filesystem::path path = test::tmp_dir() / "umt5_bad_shape.safetensors";
  save_safetensors(path, out);
  try {
    (void)Umt5Encoder::load(path, {.dtype = DType::f32});
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::bad_format);
    EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
  }
}

// Per-row scales multiply each output row; any other scale shape is refused by name.
TEST_F(Umt5Fixture, Fp8ScaleShapes) {
  const std::vector<TokenizedPrompt> ps = prompts();
  const WeightStore src = WeightStore::open(test::text_dir() / "text_encoder");
  const std::string weight = "encoder.block.1.layer.0.SelfAttention.k.weight";
  const std::string scale = "encoder.block.1.layer.0.SelfAttention.k.scale_weight";
  // k stored as k / s_row with a per-row scale s_row: the same model (s_row are powers of two,
  // so the division and the multiplication back are exact).
  std::vector<std::pair<std::string, Tensor>> out;
  std::vector<float> rows(64);
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = float(1 << (i % 4));
  for (const std::string& n : src.names()) {
    Tensor t = src.load(n, DType::f32);
    if (n == weight)
      for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] /= rows[size_t(i / t.dim(1))];
    out.emplace_back(n, t);
  }
  out.emplace_back(scale, Tensor::from_floats({64}, rows));
  const std::filesystem::path per_row = test::tmp_dir() / "umt5_row_scale.safetensors";
  save_safetensors(per_row, out);
  const Tensor base = Umt5Encoder::load(test::text_dir() / "text_encoder", {.dtype = DType::f32}).encode(*be, ps);
  const Tensor scaled = Umt5Encoder::load(per_row, {.dtype = DType::f32}).encode(*be, ps);
  EXPECT_EQ(test::max_abs_diff(test::to_doubles(scaled), test::to_doubles(base)), 0.0);

  out.back() = {scale, test::random_tensor({2, 32}, 5, DType::f32, 0.5f, 1.0f)};  // neither shape
  const std::filesystem::path path = test::tmp_dir() / "umt5_channel_scale.safetensors";
  save_safetensors(path, out);
  try {
    (void)Umt5Encoder::load(path, {.dtype = DType::f32});
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::unsupported);
    EXPECT_NE(std::string(e.what()).find(scale), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace reel
