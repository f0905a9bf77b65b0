// Files written by the reference implementations (tools/reference/make_safetensors_reference.py:
// torch + safetensors, huggingface_hub's sharded writer) read back with reel: every value equals
// torch's own float32 conversion, and a diffusers-style sharded folder equals its one-file twin.
#include <cmath>

#include "common/test_util.hpp"
#include "reel/weights.hpp"

using namespace reel;

namespace {
std::filesystem::path valid_dir() { return test::fixtures_dir() / "safetensors_valid"; }

void expect_bitwise_equal_floats(const std::vector<float>& got, const std::vector<float>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(want[i])) {
      EXPECT_TRUE(std::isnan(got[i])) << i;
    } else {
      EXPECT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(want[i])) << i << ": " << got[i] << " vs " << want[i];
    }
  }
}
}  // namespace

TEST(SafetensorsReference, TorchWrittenFileMatchesTorchConversions) {
  const WeightStore s = WeightStore::open(valid_dir() / "torch_reference.safetensors");
  EXPECT_EQ(s.metadata().at("source"), "torch");
  EXPECT_EQ(s.info("f32").dtype, FileDType::f32);
  EXPECT_EQ(s.info("bf16").dtype, FileDType::bf16);
  EXPECT_EQ(s.info("f16").dtype, FileDType::f16);
  EXPECT_EQ(s.info("bf16").shape, Shape({4, 2, 3}));
  EXPECT_EQ(s.info("rank5").shape, Shape({1, 2, 3, 2, 2}));
  EXPECT_EQ(s.info("zero_size").shape, Shape({0, 4}));
  EXPECT_EQ(s.info("scalar").shape.rank(), 0);
  EXPECT_EQ(s.load("scalar", DType::f32).to_floats(), std::vector<float>{0.8125f});
  for (const char* name : {"bf16", "f16", "f16_subnormal", "e4m3_all", "e5m2_all"}) {
    SCOPED_TRACE(name);
    expect_bitwise_equal_floats(s.load(name, DType::f32).to_floats(),
                                s.load(std::string(name) + ".as_f32", DType::f32).to_floats());
  }
  // f32 -> bf16 / f16 on load equals converting torch's values with round-to-nearest-even.
  const std::vector<float> f32 = s.view("f32").to_floats();
  const Tensor as_bf16 = s.load("f32", DType::bf16);
  for (size_t i = 0; i < f32.size(); ++i) EXPECT_EQ(as_bf16.data<bf16>()[i].bits, bf16::from_float(f32[i]).bits);
}

TEST(SafetensorsReference, HuggingfaceShardedFolderEqualsTheSingleFile) {
  const auto folder = valid_dir() / "sharded";
  const WeightStore sharded = WeightStore::open(folder);
  const WeightStore single = WeightStore::open(folder / "expected.safetensors");
  EXPECT_EQ(sharded.files().size(), 2u);
  EXPECT_EQ(sharded.metadata().at("format"), "pt");
  ASSERT_EQ(sharded.names(), single.names());
  for (const std::string& name : single.names()) {
    SCOPED_TRACE(name);
    const Tensor a = sharded.view(name), b = single.view(name);
    ASSERT_EQ(a.shape(), b.shape());
    ASSERT_EQ(a.dtype(), b.dtype());
    EXPECT_EQ(std::memcmp(a.raw(), b.raw(), a.nbytes()), 0);
  }
}
