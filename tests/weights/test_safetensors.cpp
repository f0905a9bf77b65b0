// WeightStore + save_safetensors: bit-exact round trips (every dtype, ranks 0..5, zero-size
// dims, special values), metadata, conversions on load, zero-copy views and their lifetime,
// misaligned data, sharded sets and folder detection, concurrent use.
#include <cmath>
#include <cstring>
#include <fstream>
#include <thread>

#include "common/test_util.hpp"
#include "reel/weights.hpp"

using namespace reel;
namespace fs = std::filesystem;

namespace {

fs::path fresh_dir(const std::string& name) {
  const fs::path p = test::tmp_dir() / ("weights_" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() && a.nbytes() == b.nbytes() &&
         (a.nbytes() == 0 || std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0);
}

// Every 16-bit pattern (NaN payloads, infinities, subnormals, -0 included).
Tensor all_bit_patterns(DType dtype) {
  Tensor t = Tensor::empty({256, 256}, dtype);
  auto* p = static_cast<uint16_t*>(t.raw());
  for (uint32_t i = 0; i < 65536; ++i) p[i] = uint16_t(i);
  return t;
}

void write_text(const fs::path& p, const std::string& text) {
  std::ofstream f(p, std::ios::binary);
  f << text;
}

std::vector<std::pair<std::string, Tensor>> sample_tensors() {
  std::vector<std::pair<std::string, Tensor>> tensors;
  const std::vector<Shape> shapes = {Shape(), Shape({7}), Shape({3, 0}), Shape({2, 3, 4}), Shape({1, 2, 3, 4, 5}),
                                     Shape({0}), Shape({2, 1, 1, 1, 3})};
  uint64_t seed = 100;
  for (DType dt : {DType::f32, DType::bf16, DType::f16})
    for (size_t i = 0; i < shapes.size(); ++i)
      tensors.emplace_back("t." + std::string(dtype_name(dt)) + "." + std::to_string(i),
                           test::random_tensor(shapes[i], seed++, dt, -3.0f, 3.0f));
  tensors.emplace_back("bits.bf16", all_bit_patterns(DType::bf16));
  tensors.emplace_back("bits.f16", all_bit_patterns(DType::f16));
  return tensors;
}

}  // namespace

TEST(Safetensors, RoundTripIsBitExactForEveryDtypeAndRank) {
  const fs::path file = fresh_dir("roundtrip") / "model.safetensors";
  const auto tensors = sample_tensors();
  const std::map<std::string, std::string> meta = {{"format", "pt"}, {"ünïcode key", "välue ✓"}, {"empty", ""}};
  save_safetensors(file, tensors, meta);

  const WeightStore store = WeightStore::open(file);
  ASSERT_EQ(store.size(), tensors.size());
  EXPECT_EQ(store.metadata(), meta);
  ASSERT_EQ(store.files().size(), 1u);
  EXPECT_EQ(store.files()[0], file);
  const std::vector<std::string> names = store.names();
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));

  uint64_t expected_offset = 0;
  for (const auto& [name, t] : tensors) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(store.contains(name));
    const TensorInfo& info = store.info(name);
    EXPECT_EQ(info.name, name);
    EXPECT_EQ(info.shape, t.shape());
    EXPECT_EQ(info.bytes, t.nbytes());
    EXPECT_EQ(info.file, file);
    if (expected_offset == 0) expected_offset = info.offset;  // data start: 8 + header
    EXPECT_EQ(info.offset, expected_offset) << "tensors must be stored in the given order, back to back";
    expected_offset += t.nbytes();
    EXPECT_TRUE(same_bytes(store.load(name, t.dtype()), t));
    const Tensor v = store.view(name);
    EXPECT_TRUE(v.read_only());
    EXPECT_TRUE(same_bytes(v, t));
  }
  EXPECT_EQ(store.info(tensors[0].first).offset % 8, 0u) << "the header is padded to 8 bytes";
  EXPECT_EQ(fs::file_size(file), expected_offset);
}

TEST(Safetensors, FileDtypesAreReported) {
  const fs::path file = fresh_dir("dtypes") / "m.safetensors";
  save_safetensors(file, {{"a", test::random_tensor({2}, 1, DType::f32)},
                          {"b", test::random_tensor({2}, 2, DType::bf16)},
                          {"c", test::random_tensor({2}, 3, DType::f16)}});
  const WeightStore s = WeightStore::open(file);
  EXPECT_EQ(s.info("a").dtype, FileDType::f32);
  EXPECT_EQ(s.info("b").dtype, FileDType::bf16);
  EXPECT_EQ(s.info("c").dtype, FileDType::f16);
  EXPECT_EQ(file_dtype_name(FileDType::f8_e4m3), "F8_E4M3");
  EXPECT_EQ(file_dtype_name(FileDType::f8_e5m2), "F8_E5M2");
}

TEST(Safetensors, LoadConvertsWithRoundToNearestEven) {
  const fs::path file = fresh_dir("convert") / "m.safetensors";
  // Wide range so f16 sees overflow to inf and subnormals, bf16 sees ties.
  const Tensor f32 = test::random_tensor({4096}, 7, DType::f32, -70000.0f, 70000.0f);
  const Tensor small = test::random_tensor({4096}, 8, DType::f32, -1e-6f, 1e-6f);
  const Tensor bf = test::random_tensor({512}, 9, DType::bf16, -5.0f, 5.0f);
  const Tensor h = test::random_tensor({512}, 10, DType::f16, -5.0f, 5.0f);
  save_safetensors(file, {{"f32", f32}, {"small", small}, {"bf16", bf}, {"f16", h}});
  const WeightStore s = WeightStore::open(file);

  // Reference: the element conversions of dtype.hpp (tested against double rounding in core tests).
  for (const char* name : {"f32", "small", "bf16", "f16"}) {
    SCOPED_TRACE(name);
    const std::vector<float> src = s.view(name).to_floats();
    const Tensor as_f32 = s.load(name, DType::f32);
    const Tensor as_bf16 = s.load(name, DType::bf16);
    const Tensor as_f16 = s.load(name, DType::f16);
    ASSERT_EQ(as_bf16.dtype(), DType::bf16);
    ASSERT_EQ(as_f16.dtype(), DType::f16);
    for (size_t i = 0; i < src.size(); ++i) {
      ASSERT_EQ(std::bit_cast<uint32_t>(as_f32.data<float>()[i]), std::bit_cast<uint32_t>(src[i])) << i;
      ASSERT_EQ(as_bf16.data<bf16>()[i].bits, bf16::from_float(src[i]).bits) << i;
      ASSERT_EQ(as_f16.data<f16>()[i].bits, f16::from_float(src[i]).bits) << i;
    }
  }
  try {
    s.load("f32", DType::i32);
    FAIL() << "loading as i32 must throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::unsupported);
    EXPECT_NE(std::string(e.what()).find("'f32'"), std::string::npos) << e.what();
  }
}

TEST(Safetensors, ViewKeepsTheMappingAliveAfterTheStoreAndFileAreGone) {
  const fs::path file = fresh_dir("lifetime") / "m.safetensors";
  const Tensor t = test::random_tensor({64, 33}, 11, DType::bf16);
  save_safetensors(file, {{"w", t}});
  Tensor v;
  {
    WeightStore s = WeightStore::open(file);
    v = s.view("w");
  }
  fs::remove(file);  // the mapping outlives the directory entry
  EXPECT_TRUE(v.read_only());
  EXPECT_TRUE(same_bytes(v, t));
  EXPECT_THROW(v.data<bf16>(), Error) << "views into the file are read-only";
}

// load_weight: the one place loaders (DiT, umT5, VAE) apply ComfyUI's scaled-fp8 scales.
TEST(Safetensors, LoadWeightAppliesScalesAndChecksThem) {
  const fs::path file = test::tmp_dir() / "scaled_weights.safetensors";
  const Tensor a = test::random_tensor({4, 3}, 11), b = test::random_tensor({4, 3, 2}, 12);
  const Tensor per_tensor = Tensor::from_floats(Shape{}, std::vector<float>{0.5f});
  const Tensor per_row = Tensor::from_floats({4}, std::vector<float>{1.0f, 2.0f, 0.25f, 3.0f});
  const Tensor plain = test::random_tensor({5}, 13);
  save_safetensors(file, {{"a.weight", a}, {"a.scale_weight", per_tensor}, {"b.weight", b},
                          {"b.weight_scale", per_row}, {"c.weight", plain}});
  const WeightStore store = WeightStore::open(file);
  EXPECT_EQ(store.scale_of("a.weight"), "a.scale_weight");
  EXPECT_EQ(store.scale_of("b.weight"), "b.weight_scale");
  EXPECT_EQ(store.scale_of("c.weight"), "");
  const std::vector<float> av = a.to_floats(), bv = b.to_floats();
  const std::vector<float> ga = store.load_weight("a.weight", DType::f32).to_floats();
  const std::vector<float> gb = store.load_weight("b.weight", DType::f32).to_floats();
  for (size_t i = 0; i < av.size(); ++i) EXPECT_EQ(ga[i], av[i] * 0.5f) << i;
  const float rows[] = {1.0f, 2.0f, 0.25f, 3.0f};
  for (size_t i = 0; i < bv.size(); ++i) EXPECT_EQ(gb[i], bv[i] * rows[i / 6]) << i;
  EXPECT_EQ(store.load_weight("b.weight", DType::bf16).dtype(), DType::bf16);
  EXPECT_TRUE(store.load_weight("c.weight", DType::f32, /*map=*/true).read_only());  // a view of the file
  EXPECT_FALSE(store.load_weight("c.weight", DType::f32).read_only());

  const fs::path bad = test::tmp_dir() / "bad_scales.safetensors";
  save_safetensors(bad, {{"a.weight", a}, {"a.scale_weight", Tensor::from_floats({1}, std::vector<float>{INFINITY})},
                         {"b.weight", b}, {"b.scale_weight", Tensor::from_floats({3}, std::vector<float>{1.0f, 2.0f, 3.0f})}});
  const WeightStore broken = WeightStore::open(bad);
  test::expect_code(StatusCode::bad_format, [&] { (void)broken.load_weight("a.weight", DType::f32); },
                    "'a.scale_weight' holds a value that is not finite");
  test::expect_code(StatusCode::unsupported, [&] { (void)broken.load_weight("b.weight", DType::f32); },
                    "expected one value (per tensor) or [4] (one per row)");
}

TEST(Safetensors, MisalignedDataIsCopiedForViewsAndConvertedCorrectly) {
  // Written by tools/reference/make_corrupt_safetensors.py: F8_E4M3 [3] at data offset 0, then
  // F32 [1.5, -2.25] at offset 3 and BF16 [1.5, -2.25] at offset 11 (odd: misaligned).
  const WeightStore s = WeightStore::open(test::fixtures_dir() / "safetensors_valid" / "misaligned.safetensors");
  for (const char* name : {"f32", "bf16"}) {
    SCOPED_TRACE(name);
    const Tensor v = s.view(name);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(v.raw()) % dtype_size(v.dtype()), 0u) << "view must be aligned";
    EXPECT_TRUE(v.read_only());
    EXPECT_EQ(v.to_floats(), (std::vector<float>{1.5f, -2.25f}));
    for (DType dt : {DType::f32, DType::bf16, DType::f16})
      EXPECT_EQ(s.load(name, dt).to_floats(), (std::vector<float>{1.5f, -2.25f}));
  }
  EXPECT_EQ(s.load("e4m3", DType::f32).to_floats(), (std::vector<float>{1.0f, 2.0f, 3.0f}));
}

TEST(Safetensors, ViewOfFp8IsRefusedWithAHint) {
  const fs::path file = test::fixtures_dir() / "safetensors_valid" / "all_dtypes.safetensors";
  const WeightStore s = WeightStore::open(file);
  try {
    s.view("e4m3");
    FAIL() << "view of F8 must throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::unsupported);
    const std::string m = e.what();
    EXPECT_NE(m.find("F8_E4M3"), std::string::npos) << m;
    EXPECT_NE(m.find("load("), std::string::npos) << m;
    EXPECT_NE(m.find(file.string()), std::string::npos) << m;
  }
}

TEST(Safetensors, HandWrittenFileWithEveryDtypeLoads) {
  // Values written by make_corrupt_safetensors.py (from the format definitions, not by reel).
  const WeightStore s = WeightStore::open(test::fixtures_dir() / "safetensors_valid" / "all_dtypes.safetensors");
  EXPECT_EQ(s.size(), 7u);
  EXPECT_EQ(s.metadata().at("note"), "reel fixture");
  EXPECT_EQ(s.load("f32", DType::f32).to_floats(), (std::vector<float>{1.5f, -2.25f}));
  EXPECT_EQ(s.load("bf16", DType::f32).to_floats(), (std::vector<float>{1.5f, -2.25f}));
  EXPECT_EQ(s.load("f16", DType::f32).to_floats(), (std::vector<float>{1.5f, -2.25f}));
  EXPECT_EQ(s.load("scalar", DType::f32).to_floats(), (std::vector<float>{0.75f}));
  EXPECT_EQ(s.info("scalar").shape.rank(), 0);
  EXPECT_EQ(s.info("empty").shape, Shape({0, 3}));
  EXPECT_EQ(s.load("empty", DType::bf16).numel(), 0);
  EXPECT_EQ(s.load("e4m3", DType::f32).to_floats(), (std::vector<float>{1.0f, -1.0f, 448.0f, 0.001953125f}));
  const std::vector<float> e5 = s.load("e5m2", DType::f32).to_floats();
  EXPECT_EQ(e5[0], 1.0f);
  EXPECT_EQ(e5[1], -1.0f);
  EXPECT_EQ(e5[2], 57344.0f);
  EXPECT_TRUE(std::isinf(e5[3]) && e5[3] > 0);
  EXPECT_EQ(s.info("e5m2").shape, Shape({2, 2}));
}

TEST(Safetensors, EmptyHeaderObjectIsAnEmptyStore) {
  const WeightStore s = WeightStore::open(test::fixtures_dir() / "safetensors_valid" / "empty_header_object.safetensors");
  EXPECT_EQ(s.size(), 0u);
  EXPECT_TRUE(s.names().empty());
  EXPECT_TRUE(s.metadata().empty());
}

TEST(Safetensors, NullMetadataMeansNoMetadata) {
  const WeightStore s = WeightStore::open(test::fixtures_dir() / "safetensors_valid" / "metadata_null.safetensors");
  EXPECT_TRUE(s.metadata().empty());
  EXPECT_EQ(s.load("a", DType::f32).to_floats(), (std::vector<float>{1.5f, -2.25f}));
}

TEST(Safetensors, MissingTensorNamesTheTensorAndFile) {
  const fs::path file = fresh_dir("missing") / "m.safetensors";
  save_safetensors(file, {{"present", test::random_tensor({2}, 1)}});
  const WeightStore s = WeightStore::open(file);
  EXPECT_FALSE(s.contains("absent"));
  for (int which = 0; which < 3; ++which) {
    try {
      if (which == 0) s.info("absent");
      if (which == 1) s.load("absent", DType::f32);
      if (which == 2) s.view("absent");
      FAIL() << "must throw";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), StatusCode::not_found);
      const std::string m = e.what();
      EXPECT_NE(m.find("'absent'"), std::string::npos) << m;
      EXPECT_NE(m.find(file.string()), std::string::npos) << m;
    }
  }
}

TEST(Safetensors, DefaultConstructedStoreThrowsInsteadOfCrashing) {
  const WeightStore s;
  EXPECT_THROW(s.size(), Error);
  EXPECT_THROW(s.contains("x"), Error);
  EXPECT_THROW(s.load("x", DType::f32), Error);
}

TEST(Safetensors, SaveRejectsBadInputAndLeavesNoFileBehind) {
  const fs::path dir = fresh_dir("save_errors");
  const fs::path file = dir / "m.safetensors";
  const Tensor ok = test::random_tensor({2}, 1);
  auto expect_code = [&](StatusCode code, const std::vector<std::pair<std::string, Tensor>>& t,
                         const std::map<std::string, std::string>& meta = {}) {
    try {
      save_safetensors(file, t, meta);
      ADD_FAILURE() << "must throw";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), code) << e.what();
      EXPECT_NE(std::string(e.what()).find(file.string()), std::string::npos) << e.what();
    }
  };
  expect_code(StatusCode::invalid_argument, {{"a", ok}, {"a", ok}});
  expect_code(StatusCode::invalid_argument, {{"", ok}});
  expect_code(StatusCode::invalid_argument, {{"__metadata__", ok}});
  expect_code(StatusCode::invalid_argument, {{"u", Tensor()}});
  expect_code(StatusCode::unsupported, {{"i", Tensor::zeros({2}, DType::i32)}});
  expect_code(StatusCode::invalid_argument, {{"a", ok}}, {{"bad", std::string("\xff\xfe")}});
  EXPECT_TRUE(fs::is_empty(dir)) << "no partial or temporary file may remain";

  const fs::path nowhere = dir / "no_such_folder" / "m.safetensors";
  try {
    save_safetensors(nowhere, {{"a", ok}});
    ADD_FAILURE() << "must throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::io_error) << e.what();
    EXPECT_NE(std::string(e.what()).find(nowhere.string()), std::string::npos) << e.what();
  }

  // Overwriting an existing file replaces it whole.
  save_safetensors(file, {{"a", ok}});
  const Tensor other = test::random_tensor({3}, 2, DType::bf16);
  save_safetensors(file, {{"b", other}});
  const WeightStore s = WeightStore::open(file);
  EXPECT_EQ(s.names(), std::vector<std::string>{"b"});
  EXPECT_TRUE(same_bytes(s.load("b", DType::bf16), other));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
}

TEST(Safetensors, ShardedRoundTripThroughIndexFileAndFolder) {
  const fs::path dir = fresh_dir("sharded");
  const auto tensors = sample_tensors();
  std::vector<std::pair<std::string, Tensor>> first(tensors.begin(), tensors.begin() + 9);
  std::vector<std::pair<std::string, Tensor>> second(tensors.begin() + 9, tensors.end());
  save_safetensors(dir / "model-00001-of-00002.safetensors", first, {{"shard", "1"}});
  save_safetensors(dir / "model-00002-of-00002.safetensors", second, {{"shard", "2"}});
  std::string index = R"({"metadata": {"total_size": 0}, "weight_map": {)";
  for (size_t i = 0; i < tensors.size(); ++i)
    index += (i ? ", \"" : "\"") + tensors[i].first + "\": \"model-0000" + (i < 9 ? "1" : "2") + "-of-00002.safetensors\"";
  write_text(dir / "model.safetensors.index.json", index + "}}");

  for (const fs::path& p : {dir / "model.safetensors.index.json", dir}) {
    SCOPED_TRACE(p.string());
    const WeightStore s = WeightStore::open(p);
    ASSERT_EQ(s.size(), tensors.size());
    EXPECT_EQ(s.files().size(), 2u);
    EXPECT_EQ(s.metadata().at("shard"), "1") << "metadata comes from the first shard";
    for (size_t i = 0; i < tensors.size(); ++i) {
      const auto& [name, t] = tensors[i];
      EXPECT_EQ(s.info(name).file.filename(), i < 9 ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors");
      EXPECT_TRUE(same_bytes(s.load(name, t.dtype()), t)) << name;
      EXPECT_TRUE(same_bytes(s.view(name), t)) << name;
    }
  }
}

TEST(Safetensors, FolderDetectionPrefersTheDiffusersNames) {
  const fs::path dir = fresh_dir("folder");
  const Tensor a = test::random_tensor({3}, 1), b = test::random_tensor({3}, 2);
  save_safetensors(dir / "other.safetensors", {{"other", a}});
  EXPECT_EQ(WeightStore::open(dir).names(), std::vector<std::string>{"other"}) << "a single file is used";
  save_safetensors(dir / "model.safetensors", {{"model", a}});
  EXPECT_EQ(WeightStore::open(dir).names(), std::vector<std::string>{"model"});
  save_safetensors(dir / "diffusion_pytorch_model.safetensors", {{"dpm", b}});
  EXPECT_EQ(WeightStore::open(dir).names(), std::vector<std::string>{"dpm"});
  write_text(dir / "notes.pth", "not parsed");
  EXPECT_EQ(WeightStore::open(dir).names(), std::vector<std::string>{"dpm"}) << "pickles beside safetensors are ignored";
}

TEST(Safetensors, ConcurrentConstUseFromManyThreads) {
  const fs::path file = fresh_dir("threads") / "m.safetensors";
  const auto tensors = sample_tensors();
  save_safetensors(file, tensors);
  const WeightStore s = WeightStore::open(file);
  std::vector<std::thread> threads;
  std::vector<int> failures(8, 0);
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int round = 0; round < 20; ++round)
        for (size_t i = size_t(t) % tensors.size(); i < tensors.size(); i += 3) {
          const auto& [name, ref] = tensors[i];
          if (!same_bytes(s.load(name, ref.dtype()), ref) || !same_bytes(s.view(name), ref) ||
              s.info(name).shape != ref.shape() || !s.contains(name))
            ++failures[size_t(t)];
        }
    });
  for (auto& th : threads) th.join();
  for (int t = 0; t < 8; ++t) EXPECT_EQ(failures[size_t(t)], 0) << "thread " << t;
}
