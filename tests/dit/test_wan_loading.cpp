// WanTransformer loading and input checks: a missing or mis-shaped tensor is named with the
// expected and actual shape, unknown extra tensors are ignored and listed, files that are not
// a Wan transformer (or an unsupported variant) are refused, bad forward() inputs are named,
// and the parameter counts of the shipped configurations match reel/wan.md §1.1.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "dit/dit_fixtures.hpp"
#include "wan/wan_model.hpp"

namespace reel {
namespace {

namespace fs = std::filesystem;
using Tensors = std::vector<std::pair<std::string, Tensor>>;

// The TI2V fixture in the original layout (f32, no prefix; head_dim 24), as editable tensors.
Tensors ti2v_original() {
  const WeightStore store = WeightStore::open(test::dit_dir("ti2v") / "original.safetensors");
  Tensors t;
  for (const std::string& n : store.names()) t.emplace_back(n, store.load(n, DType::f32));
  return t;
}

fs::path write(const std::string& file, const Tensors& tensors) {
  const fs::path p = test::tmp_dir() / ("wan_" + file + ".safetensors");
  save_safetensors(p, tensors);
  return p;
}

// What fn threw (test::code_of), kept together for the checks below.
struct Failure {
  StatusCode code = StatusCode::ok;
  std::string message;
};

Failure failure_of(const std::function<void()>& fn) {
  Failure f;
  f.code = test::code_of(fn, &f.message);
  return f;
}

bool mentions(const Failure& f, const std::string& s) { return f.message.find(s) != std::string::npos; }

WanLoadOptions ti2v_options() { return {.precision = WanPrecision::f32, .head_dim = 24}; }

TEST(WanLoading, MissingTensorIsNamed) {
  Tensors t = ti2v_original();
  std::erase_if(t, [](const auto& e) { return e.first == "blocks.1.cross_attn.o.bias"; });
  const fs::path p = write("missing", t);
  const Failure f = failure_of([&] { WanTransformer::load(p, ti2v_options()); });
  EXPECT_EQ(f.code, StatusCode::not_found);
  EXPECT_TRUE(mentions(f, "'blocks.1.cross_attn.o.bias'")) << f.message;
  EXPECT_TRUE(mentions(f, "missing")) << f.message;
}

TEST(WanLoading, WrongShapeNamesTensorExpectedAndActual) {
  Tensors t = ti2v_original();
  for (auto& [name, tensor] : t)
    if (name == "blocks.1.self_attn.k.weight") tensor = test::random_tensor({48, 40}, 21);
  const fs::path p = write("misshaped", t);
  const Failure f = failure_of([&] { WanTransformer::load(p, ti2v_options()); });
  EXPECT_EQ(f.code, StatusCode::bad_format);
  EXPECT_TRUE(mentions(f, "'blocks.1.self_attn.k.weight'")) << f.message;
  EXPECT_TRUE(mentions(f, "[48, 40]")) << f.message;
  EXPECT_TRUE(mentions(f, "expected [48, 48]")) << f.message;

  // A config-defining tensor with the wrong rank is refused too.
  t = ti2v_original();
  for (auto& [name, tensor] : t)
    if (name == "patch_embedding.weight") tensor = test::random_tensor({48, 48, 4}, 22);
  const Failure g = failure_of([&] { WanTransformer::load(write("patch_rank", t), ti2v_options()); });
  EXPECT_EQ(g.code, StatusCode::bad_format);
  EXPECT_TRUE(mentions(g, "patch_embedding.weight")) << g.message;
}

// Policy: tensors the model does not use are ignored (checkpoints carry markers such as
// ComfyUI's `scaled_fp8`, input scales, or leftovers) and listed in checkpoint().ignored, so a
// caller can warn about them; they never change the result.
TEST(WanLoading, UnknownExtraTensorsAreIgnoredAndListed) {
  Tensors t = ti2v_original();
  t.emplace_back("blocks.0.lora_down.weight", test::random_tensor({4, 48}, 23));
  t.emplace_back("zz_extra", test::random_tensor({3}, 24));
  const WanTransformer with_extra = WanTransformer::load(write("extra", t), ti2v_options());
  EXPECT_EQ(with_extra.checkpoint().ignored, (std::vector<std::string>{"blocks.0.lora_down.weight", "zz_extra"}));

  const WanTransformer plain = WanTransformer::load(test::dit_dir("ti2v") / "original.safetensors", ti2v_options());
  auto be = make_cpu_backend({.threads = 2});
  const test::DitIo io = test::read_dit_io("ti2v");
  const Tensor a = test::run_dit(with_extra, *be, io), b = test::run_dit(plain, *be, io);
  EXPECT_EQ(std::memcmp(a.raw(), b.raw(), a.nbytes()), 0);
}

TEST(WanLoading, RefusesWhatIsNotAWanTransformer) {
  const Failure none = failure_of([&] { WanTransformer::load(write("not_wan", {{"foo", test::random_tensor({2}, 25)}})); });
  EXPECT_EQ(none.code, StatusCode::bad_format);
  EXPECT_TRUE(mentions(none, "patch_embedding.weight")) << none.message;

  Tensors mixed = ti2v_original();  // original names plus one diffusers-only name
  mixed.emplace_back("condition_embedder.time_proj.weight", test::random_tensor({288, 48}, 26));
  const Failure both = failure_of([&] { WanTransformer::load(write("mixed", mixed), ti2v_options()); });
  EXPECT_EQ(both.code, StatusCode::bad_format);
  EXPECT_TRUE(mentions(both, "layout")) << both.message;

  Tensors two = ti2v_original();  // two models in one file
  two.emplace_back("other.patch_embedding.weight", test::random_tensor({1}, 27));
  EXPECT_EQ(failure_of([&] { WanTransformer::load(write("two", two), ti2v_options()); }).code, StatusCode::bad_format);
}

TEST(WanLoading, RefusesUnsupportedOrInconsistentVariants) {
  Tensors flf = ti2v_original();
  flf.emplace_back("img_emb.emb_pos", test::random_tensor({1, 4, 8}, 28));
  const Failure f = failure_of([&] { WanTransformer::load(write("flf2v", flf), ti2v_options()); });
  EXPECT_EQ(f.code, StatusCode::unsupported);
  EXPECT_TRUE(mentions(f, "img_emb.emb_pos")) << f.message;

  Tensors half_i2v = ti2v_original();  // image K/V projections without an image embedder
  half_i2v.emplace_back("blocks.0.cross_attn.k_img.weight", test::random_tensor({48, 48}, 29));
  const Failure g = failure_of([&] { WanTransformer::load(write("half_i2v", half_i2v), ti2v_options()); });
  EXPECT_EQ(g.code, StatusCode::bad_format);
  EXPECT_TRUE(mentions(g, "img_emb.proj.0.weight")) << g.message;

  // head_dim must divide the width (48): 40 does not; without config.json 128 does not either.
  const fs::path orig = test::dit_dir("ti2v") / "original.safetensors";
  EXPECT_EQ(failure_of([&] { WanTransformer::load(orig, {.head_dim = 40}); }).code, StatusCode::invalid_argument);
  EXPECT_EQ(failure_of([&] { WanTransformer::load(orig); }).code, StatusCode::invalid_argument);
}

TEST(WanLoading, ConfigJsonGivesHeadDimAndIsChecked) {
  const WeightStore store = WeightStore::open(test::dit_dir("ti2v") / "diffusers");
  const fs::path good = test::dit_dir("ti2v") / "diffusers" / "config.json";
  EXPECT_EQ(WanTransformer::read_config(store, 0, good).head_dim, 24);
  EXPECT_EQ(WanTransformer::read_config(store, 0, good).heads, 2);
  EXPECT_EQ(WanTransformer::read_config(store, 12, good).heads, 4);  // an explicit option wins

  const fs::path bad_heads = test::tmp_dir() / "wan_bad_heads.json";
  std::ofstream(bad_heads) << R"({"attention_head_dim": 24, "num_attention_heads": 3})";
  const Failure f = failure_of([&] { WanTransformer::read_config(store, 0, bad_heads); });
  EXPECT_EQ(f.code, StatusCode::bad_format);
  EXPECT_TRUE(mentions(f, "num_attention_heads 3")) << f.message;

  const fs::path broken = test::tmp_dir() / "wan_broken.json";
  std::ofstream(broken) << R"({"attention_head_dim": 24,)";
  EXPECT_EQ(failure_of([&] { WanTransformer::read_config(store, 0, broken); }).code, StatusCode::bad_format);

  // Every key the weights also decide must agree with them, named with both values; a class or
  // a variant reel does not run is refused by name.
  const nlohmann::json original = nlohmann::json::parse(std::ifstream(good));
  const fs::path edited = test::tmp_dir() / "wan_edited.json";
  auto with = [&](const std::string& key, const nlohmann::json& value) {
    nlohmann::json j = original;
    j[key] = value;
    std::ofstream(edited) << j.dump();
    return failure_of([&] { WanTransformer::read_config(store, 0, edited); });
  };
  for (const auto& [key, value] : std::vector<std::pair<std::string, nlohmann::json>>{
           {"num_layers", 7}, {"ffn_dim", 1}, {"freq_dim", 2}, {"text_dim", 3}, {"in_channels", 4},
           {"out_channels", 5}, {"patch_size", nlohmann::json::array({1, 4, 4})}, {"cross_attn_norm", false},
           {"image_dim", 8}, {"added_kv_proj_dim", 9}}) {
    const Failure e = with(key, value);
    EXPECT_EQ(e.code, StatusCode::bad_format) << key;
    EXPECT_TRUE(mentions(e, "'" + key + "' is " + value.dump() + " but the weights have")) << e.message;
  }
  EXPECT_EQ(with("_class_name", "WanVACETransformer3DModel").code, StatusCode::unsupported);
  EXPECT_EQ(with("pos_embed_seq_len", 514).code, StatusCode::unsupported);
  EXPECT_EQ(with("a_key_diffusers_ignores", 1).code, StatusCode::ok);
}

TEST(WanLoading, ForwardNamesBadInputs) {
  auto be = make_cpu_backend({.threads = 2});
  const WanTransformer t2v = WanTransformer::load(test::dit_dir("t2v") / "original.safetensors",
                                                  {.precision = WanPrecision::f32});
  const WanTransformer i2v = WanTransformer::load(test::dit_dir("i2v") / "diffusers", {.precision = WanPrecision::f32});
  const test::DitIo io = test::read_dit_io("t2v");
  const test::DitIo iio = test::read_dit_io("i2v");
  auto fails = [&](auto&& fn, const std::string& needle) {
    const Failure f = failure_of(fn);
    EXPECT_EQ(f.code, StatusCode::invalid_argument) << f.message;
    EXPECT_TRUE(mentions(f, needle)) << "'" << needle << "' not in: " << f.message;
  };
  const Tensor wrong_channels = test::random_tensor({2, 15, 3, 6, 10}, 31);
  fails([&] { t2v.forward(*be, wrong_channels, io.timesteps, io.text); }, "latents [2, 15, 3, 6, 10]");
  const Tensor odd_height = test::random_tensor({2, 16, 3, 7, 10}, 32);
  fails([&] { t2v.forward(*be, odd_height, io.timesteps, io.text); }, "[2, 16, 3, 7, 10]");
  const std::vector<float> three{1.0f, 2.0f, 3.0f};
  fails([&] { t2v.forward(*be, io.latents, three, io.text); }, "3 timesteps");
  const std::vector<float> nan{1.0f, std::nanf("")};
  fails([&] { t2v.forward(*be, io.latents, nan, io.text); }, "not finite");
  const Tensor text_dim = test::random_tensor({2, 7, 17}, 33);
  fails([&] { t2v.forward(*be, io.latents, io.timesteps, text_dim); }, "text_context [2, 7, 17]");
  const Tensor text_batch = test::random_tensor({1, 7, 16}, 34);
  fails([&] { t2v.forward(*be, io.latents, io.timesteps, text_batch); }, "text_context [1, 7, 16]");
  fails([&] { t2v.forward(*be, io.latents, io.timesteps, io.text, &iio.image); }, "no image-context path");
  fails([&] { i2v.forward(*be, iio.latents, iio.timesteps, iio.text); }, "needs image_context");
  const Tensor image_dim = test::random_tensor({2, 5, 23}, 35);
  fails([&] { i2v.forward(*be, iio.latents, iio.timesteps, iio.text, &image_dim); }, "[2, 5, 23]");
}

// wan.md §1.1 lists the parameter counts computed from the released shapes.
TEST(WanConfig, ParameterCountsOfTheShippedModels) {
  auto cfg = [](int64_t dim, int64_t ffn, int64_t layers, int64_t in, int64_t out, int64_t image) {
    WanConfig c;
    c.dim = dim;
    c.head_dim = 128;
    c.heads = dim / 128;
    c.ffn_dim = ffn;
    c.layers = layers;
    c.in_channels = in;
    c.out_channels = out;
    c.text_dim = 4096;
    c.image_dim = image;
    return c;
  };
  EXPECT_EQ(cfg(1536, 8960, 30, 16, 16, 0).parameter_count(), 1418996800);    // T2V-1.3B
  EXPECT_EQ(cfg(5120, 13824, 40, 16, 16, 0).parameter_count(), 14288491584);  // T2V-14B, A14B experts
  EXPECT_EQ(cfg(5120, 13824, 40, 36, 16, 1280).parameter_count(), 16394878784);  // I2V-14B
  EXPECT_EQ(cfg(3072, 14336, 30, 48, 48, 0).parameter_count(), 4999787712);   // TI2V-5B
}

// The name table's shapes and parameter_count() agree: every loaded tensor counted once.
TEST(WanConfig, LoadedTensorsAddUpToTheParameterCount) {
  for (const test::DitCase& c : test::dit_cases()) {
    const WanTransformer dit = WanTransformer::load(test::dit_dir(c.name) / "original.safetensors",
                                                    {.precision = WanPrecision::f32, .head_dim = c.head_dim});
    const wan::WanWeights& w = wan_impl(dit).weights;
    int64_t n = 0;
    auto add = [&](const Tensor& t) { n += t.defined() ? t.numel() : 0; };
    for (const wan::Linear* l : {&w.patch, &w.time_in, &w.time_out, &w.time_proj, &w.text_in, &w.text_out,
                                 &w.image_in, &w.image_out, &w.head}) {
      add(l->weight);
      add(l->bias);
    }
    for (const wan::Affine* a : {&w.image_norm_in, &w.image_norm_out}) {
      add(a->weight);
      add(a->bias);
    }
    add(w.head_modulation);
    for (const wan::BlockWeights& b : w.blocks) {
      for (const wan::Linear* l : {&b.q, &b.k, &b.v, &b.o, &b.cross_q, &b.cross_k, &b.cross_v, &b.cross_o, &b.image_k,
                                   &b.image_v, &b.ffn_in, &b.ffn_out}) {
        add(l->weight);
        add(l->bias);
      }
      for (const Tensor* t : {&b.modulation, &b.norm_q, &b.norm_k, &b.cross_norm_q, &b.cross_norm_k, &b.image_norm_k,
                              &b.cross_norm.weight, &b.cross_norm.bias})
        add(*t);
    }
    EXPECT_EQ(n, dit.config().parameter_count()) << c.name;
    // Every weight stays immutable: the file dtype matched f32 (ti2v) or was converted.
    EXPECT_EQ(w.time_in.weight.dtype(), DType::f32);
  }
}

}  // namespace
}  // namespace reel
