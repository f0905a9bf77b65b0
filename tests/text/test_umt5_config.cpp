// umt5_config_from_shapes on name → shape maps (nothing allocated): the real umT5-XXL shapes
// in every accepted layout, and malformed checkpoints rejected with a message naming the tensor.
#include <gtest/gtest.h>

#include "reel/text_encoder.hpp"

namespace reel {
namespace {

enum class Names { transformers, wan };

// umT5-XXL (google/umt5-xxl, wan.md §6): 24 layers, d_model 4096, 64 heads × 64, d_ff 10240,
// vocab 256 384, 32 buckets.
std::map<std::string, Shape> xxl_shapes(Names names, const std::string& prefix = "") {
  const int64_t d = 4096, inner = 64 * 64, f = 10240;
  std::map<std::string, Shape> m;
  auto put = [&](const std::string& n, Shape s) { m[prefix + n] = s; };
  const bool hf = names == Names::transformers;
  put(hf ? "shared.weight" : "token_embedding.weight", {256384, d});
  put(hf ? "encoder.final_layer_norm.weight" : "norm.weight", {d});
  for (int l = 0; l < 24; ++l) {
    const std::string b = hf ? "encoder.block." + std::to_string(l) + "." : "blocks." + std::to_string(l) + ".";
    put(b + (hf ? "layer.0.layer_norm.weight" : "norm1.weight"), {d});
    for (const char* p : {"q", "k", "v"})
      put(b + (hf ? std::string("layer.0.SelfAttention.") : std::string("attn.")) + p + ".weight", {inner, d});
    put(b + (hf ? "layer.0.SelfAttention.o.weight" : "attn.o.weight"), {d, inner});
    put(b + (hf ? "layer.0.SelfAttention.relative_attention_bias.weight" : "pos_embedding.embedding.weight"), {32, 64});
    put(b + (hf ? "layer.1.layer_norm.weight" : "norm2.weight"), {d});
    put(b + (hf ? "layer.1.DenseReluDense.wi_0.weight" : "ffn.gate.0.weight"), {f, d});
    put(b + (hf ? "layer.1.DenseReluDense.wi_1.weight" : "ffn.fc1.weight"), {f, d});
    put(b + (hf ? "layer.1.DenseReluDense.wo.weight" : "ffn.fc2.weight"), {d, f});
  }
  return m;
}

void expect_xxl(const Umt5Config& c) {
  EXPECT_EQ(c.vocab_size, 256384);
  EXPECT_EQ(c.d_model, 4096);
  EXPECT_EQ(c.num_heads, 64);
  EXPECT_EQ(c.d_kv, 64);
  EXPECT_EQ(c.inner_dim(), 4096);
  EXPECT_EQ(c.d_ff, 10240);
  EXPECT_EQ(c.num_layers, 24);
  EXPECT_EQ(c.num_buckets, 32);
  EXPECT_EQ(c.max_distance, 128);
  EXPECT_FLOAT_EQ(c.eps, 1e-6f);
}

// Throws `code` (bad_format: wrong shape or not an encoder; not_found: missing tensor) with a
// message that contains `needle`.
void expect_rejected(const std::map<std::string, Shape>& shapes, const std::string& needle,
                     StatusCode code = StatusCode::bad_format) {
  try {
    (void)umt5_config_from_shapes(shapes);
    ADD_FAILURE() << "accepted; expected an error naming " << needle;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(Umt5Config, XxlShapesInEveryLayout) {
  expect_xxl(umt5_config_from_shapes(xxl_shapes(Names::transformers)));                // diffusers / ComfyUI
  expect_xxl(umt5_config_from_shapes(xxl_shapes(Names::wan)));                         // original Wan
  expect_xxl(umt5_config_from_shapes(xxl_shapes(Names::transformers, "te.umt5xxl.")));  // prefixed single file
  // ComfyUI extras (fp8 scales, the scaled_fp8 marker) and a tied embed_tokens copy are ignored.
  auto comfy = xxl_shapes(Names::transformers);
  comfy["scaled_fp8"] = Shape{0};
  comfy["encoder.block.3.layer.0.SelfAttention.q.scale_weight"] = Shape{};
  comfy["encoder.embed_tokens.weight"] = Shape{256384, 4096};
  expect_xxl(umt5_config_from_shapes(comfy));
  // The embedding may be stored only as encoder.embed_tokens.
  auto tied = xxl_shapes(Names::transformers);
  tied.erase("shared.weight");
  tied["encoder.embed_tokens.weight"] = Shape{256384, 4096};
  expect_xxl(umt5_config_from_shapes(tied));
}

TEST(Umt5Config, WrongShapeNamesTheTensor) {
  auto m = xxl_shapes(Names::transformers);
  m["encoder.block.7.layer.0.SelfAttention.k.weight"] = Shape{4096, 4095};
  expect_rejected(m, "encoder.block.7.layer.0.SelfAttention.k.weight");

  m = xxl_shapes(Names::transformers);
  m["encoder.block.11.layer.1.DenseReluDense.wo.weight"] = Shape{10240, 4096};  // transposed
  expect_rejected(m, "encoder.block.11.layer.1.DenseReluDense.wo.weight");

  m = xxl_shapes(Names::wan);
  m["blocks.5.pos_embedding.embedding.weight"] = Shape{32, 32};  // other heads than layer 0
  expect_rejected(m, "blocks.5.pos_embedding.embedding.weight");

  m = xxl_shapes(Names::transformers);
  m["encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"] = Shape{32, 60};  // 4096 % 60 != 0
  expect_rejected(m, "encoder.block.0.layer.0.SelfAttention.q.weight");

  m = xxl_shapes(Names::transformers);
  m["shared.weight"] = Shape{256384, 4096, 1};
  expect_rejected(m, "shared.weight");

  m = xxl_shapes(Names::transformers);
  m["encoder.final_layer_norm.weight"] = Shape{4095};
  expect_rejected(m, "encoder.final_layer_norm.weight");
}

TEST(Umt5Config, MissingTensorNamesIt) {
  auto m = xxl_shapes(Names::transformers);
  m.erase("encoder.block.23.layer.1.DenseReluDense.wo.weight");
  expect_rejected(m, "encoder.block.23.layer.1.DenseReluDense.wo.weight", StatusCode::not_found);

  m = xxl_shapes(Names::transformers);  // a gap in the layers
  for (auto it = m.begin(); it != m.end();)
    it = it->first.starts_with("encoder.block.12.") ? m.erase(it) : std::next(it);
  expect_rejected(m, "encoder.block.12.", StatusCode::not_found);

  m = xxl_shapes(Names::wan, "x.");
  m.erase("x.token_embedding.weight");
  expect_rejected(m, "x.token_embedding.weight", StatusCode::not_found);
}

TEST(Umt5Config, NotAnEncoderOrAmbiguous) {
  expect_rejected({{"blocks.0.self_attn.q.weight", Shape{1536, 1536}}}, "not a umT5 encoder checkpoint");
  auto both = xxl_shapes(Names::transformers, "a.");
  for (const auto& [n, s] : xxl_shapes(Names::transformers, "b.")) both[n] = s;
  expect_rejected(both, "ambiguous");
  // A layer index past any real model is refused before anything is looped over.
  auto huge = xxl_shapes(Names::transformers);
  huge["encoder.block.999999999.layer.0.layer_norm.weight"] = Shape{4096};
  expect_rejected(huge, "encoder.block.999999999.layer.0.layer_norm.weight");
}

}  // namespace
}  // namespace reel
