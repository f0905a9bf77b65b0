// GGUF in WeightStore: every supported ggml type against gguf-py's own dequantizer (the
// fixtures of tools/reference/make_gguf_fixtures.py), the metadata, a Wan transformer loaded
// from a Q8_0 GGUF, and hostile files (truncations, bad counts, offsets, types, names).
#include <gtest/gtest.h>
#include <gmock/gmock.h>

#include <bit>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <optional>
#include <random>

#include "common/test_util.hpp"
#include "dit/dit_fixtures.hpp"
#include "reel/backend.hpp"
#include "reel/wan_transformer.hpp"
#include "reel/weights.hpp"
#include "weights/gguf_reader.hpp"

namespace reel {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

fs::path gguf_dir() { return test::fixtures_dir() / "gguf"; }

std::vector<std::byte> read_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  const std::vector<char> c((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::vector<std::byte> out(c.size());
  std::memcpy(out.data(), c.data(), c.size());
  return out;
}

fs::path write_tmp(const std::string& name, const std::vector<std::byte>& bytes) {
  const fs::path p = test::tmp_dir() / name;
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  return p;
}

std::vector<uint32_t> bits_of(const Tensor& t) {
  std::vector<uint32_t> out(size_t(t.numel()));
  std::memcpy(out.data(), t.raw(), out.size() * 4);
  return out;
}

// ---- every type vs gguf.quants.dequantize -------------------------------------------------

TEST(Gguf, EveryTypeIsBitIdenticalToGgufPy) {
  const WeightStore g = WeightStore::open(gguf_dir() / "types.gguf");
  const WeightStore ref = WeightStore::open(gguf_dir() / "types_ref.safetensors");
  const std::map<std::string, FileDType> types = {
      {"f32", FileDType::f32},   {"f16", FileDType::f16},   {"bf16", FileDType::bf16}, {"q8_0", FileDType::q8_0},
      {"q4_0", FileDType::q4_0}, {"q4_1", FileDType::q4_1}, {"q5_0", FileDType::q5_0}, {"q5_1", FileDType::q5_1},
      {"q2_k", FileDType::q2_k}, {"q3_k", FileDType::q3_k}, {"q4_k", FileDType::q4_k}, {"q5_k", FileDType::q5_k},
      {"q6_k", FileDType::q6_k}, {"reshaped", FileDType::f32}};
  ASSERT_EQ(g.size(), types.size());
  for (const auto& [name, type] : types) {
    SCOPED_TRACE(name);
    const TensorInfo& info = g.info(name);
    EXPECT_EQ(info.dtype, type);
    const Tensor want = ref.load(name, DType::f32);
    EXPECT_EQ(info.shape, want.shape());
    // The same f32 expressions in the same order: exact, bit for bit.
    const Tensor got = g.load(name, DType::f32);
    EXPECT_EQ(bits_of(got), bits_of(want));
    // bf16: the f32 values rounded once.
    EXPECT_EQ(test::to_doubles(g.load(name, DType::bf16)), test::to_doubles(want.to(DType::bf16)));
  }
  EXPECT_EQ(g.info("q4_k").bytes, 3u * 144u);
  EXPECT_EQ(g.info("q4_k").offset % 64, 0u);  // the file's custom alignment
  EXPECT_EQ(file_dtype_name(FileDType::q5_k), "Q5_K");
}

TEST(Gguf, ViewIsZeroCopyForFloatsAndRefusesQuantised) {
  const WeightStore g = WeightStore::open(gguf_dir() / "types.gguf");
  const Tensor v = g.view("f16");
  EXPECT_EQ(v.dtype(), DType::f16);
  EXPECT_EQ(test::to_doubles(v), test::to_doubles(g.load("f16", DType::f16)));
  try {
    g.view("q4_0");
    FAIL() << "view of Q4_0 succeeded";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::unsupported);
    EXPECT_THAT(e.what(), HasSubstr("Q4_0"));
  }
}

TEST(Gguf, MetadataOfEveryValueType) {
  const WeightStore g = WeightStore::open(gguf_dir() / "types.gguf");
  const auto& m = g.metadata();
  const std::map<std::string, std::string> want = {
      {"general.architecture", "reel-test"}, {"general.alignment", "64"}, {"test.string", "h\xc3\xa9llo GGUF"},
      {"test.u8", "200"},          {"test.i8", "-7"},          {"test.u16", "65000"},
      {"test.i16", "-300"},        {"test.u32", "4000000000"}, {"test.i32", "-123456"},
      {"test.f32", "0.5"},         {"test.bool", "true"},      {"test.u64", "1099511627779"},
      {"test.i64", "-1099511627776"}, {"test.f64", "0.25"},    {"test.ints", "[1, 2, 3]"},
      {"test.strings", "[3 values of STRING]"}, {"comfy.gguf.orig_shape.reshaped", "[2, 3, 1, 2, 2]"}};
  for (const auto& [k, v] : want) {
    ASSERT_TRUE(m.count(k)) << k;
    EXPECT_EQ(m.at(k), v) << k;
  }
  ASSERT_TRUE(m.count("test.long"));
  EXPECT_THAT(m.at("test.long"), HasSubstr("[100 values of "));
}

// ---- a Wan transformer from GGUF -----------------------------------------------------------

TEST(Gguf, WanTransformerFromQ8GgufMatchesTheSameWeightsFromSafetensors) {
  const fs::path gguf = gguf_dir() / "wan_i2v.gguf";
  const WeightStore store = WeightStore::open(gguf);
  EXPECT_EQ(store.info("blocks.0.self_attn.q.weight").dtype, FileDType::q8_0);
  EXPECT_EQ(store.info("patch_embedding.weight").shape.rank(), 5);  // from comfy.gguf.orig_shape

  // The same (dequantised) values written as a safetensors file: the two models must agree exactly.
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const std::string& name : store.names()) tensors.emplace_back(name, store.load(name, DType::f32));
  const fs::path st = test::tmp_dir() / "gguf_wan_dequantised.safetensors";
  save_safetensors(st, tensors);

  const WanLoadOptions opts{.precision = WanPrecision::f32, .head_dim = 32};
  const WanTransformer from_gguf = WanTransformer::load(gguf, opts);
  const WanTransformer from_st = WanTransformer::load(st, opts);
  auto be = make_cpu_backend({.threads = 2});
  const test::DitIo io = test::read_dit_io("i2v");
  const Tensor a = test::run_dit(from_gguf, *be, io), b = test::run_dit(from_st, *be, io);
  EXPECT_EQ(test::to_doubles(a), test::to_doubles(b));

  // Against diffusers with the unquantised weights: Q8_0 rounds each weight to a step of
  // max|w|/127 per 32 values (relative error ≲ 0.4% of the block maximum, ~0.2% rms for these
  // Gaussian weights); through 2 blocks the output moves by about that much. Bound at 2%.
  const double rel = test::relative_l2(test::to_doubles(a), test::to_doubles(io.out_f32));
  std::printf("Q8_0 GGUF vs diffusers (unquantised weights): relative L2 %.3g\n", rel);
  EXPECT_LT(rel, 2e-2);
  EXPECT_GT(rel, 0.0);  // quantised for real
}

// ---- reel writing GGUF ------------------------------------------------------------------------

// reel-cli convert / convert_to_gguf on the i2v fixture transformer. The committed
// reel_i2v_q4_0.gguf was written by it, and tools/reference/read_reel_gguf.py read it with
// gguf-py into reel_i2v_q4_0_ref.safetensors (checking the names, the architecture key, the
// orig_shape and that every block is within a step of the source).
TEST(Gguf, ReelWrittenGgufIsReadByGgufPy) {
  const fs::path written = test::tmp_dir() / "reel_i2v_q4_0.gguf";
  convert_to_gguf(test::dit_dir("i2v") / "diffusers", written, WanWeightFormat::q4_0);
  const auto bytes = [](const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  // Deterministic: the same bytes as the file gguf-py read (rewrite both if the writer changes).
  EXPECT_TRUE(bytes(written) == bytes(gguf_dir() / "reel_i2v_q4_0.gguf"));

  const WeightStore ours = WeightStore::open(gguf_dir() / "reel_i2v_q4_0.gguf");
  const WeightStore theirs = WeightStore::open(gguf_dir() / "reel_i2v_q4_0_ref.safetensors");
  ASSERT_EQ(ours.names(), theirs.names());
  for (const std::string& name : ours.names())
    EXPECT_EQ(test::to_doubles(ours.load(name, DType::f32)), test::to_doubles(theirs.load(name, DType::f32))) << name;

  // Kept as stored, the file computes exactly what the source quantised at load computes.
  auto be = make_cpu_backend({.threads = 2});
  const test::DitIo io = test::read_dit_io("i2v");
  // No head_dim given: the file records its source's (32; the shapes cannot tell it).
  const WanTransformer from_gguf =
      WanTransformer::load(written, {.precision = WanPrecision::f32, .weight_format = WanWeightFormat::stored});
  EXPECT_EQ(from_gguf.config().head_dim, 32);
  const WanTransformer at_load = WanTransformer::load(
      test::dit_dir("i2v") / "diffusers", {.precision = WanPrecision::f32, .weight_format = WanWeightFormat::q4_0});
  EXPECT_EQ(test::to_doubles(test::run_dit(from_gguf, *be, io)), test::to_doubles(test::run_dit(at_load, *be, io)));
}

TEST(Gguf, ConvertRefusesWhatItCannotWrite) {
  test::expect_code(StatusCode::invalid_argument, [] {
    convert_to_gguf(test::dit_dir("i2v") / "diffusers", test::tmp_dir() / "x.gguf", WanWeightFormat::stored);
  }, "q8_0, q4_0 or q4_k");
  test::expect_code(StatusCode::not_found, [] {
    convert_to_gguf(test::tmp_dir() / "no_such_model", test::tmp_dir() / "x.gguf", WanWeightFormat::q8_0);
  });
  const fs::path missing = test::tmp_dir() / "no_such_folder" / "out.gguf";
  test::expect_code(StatusCode::io_error, [&] {
    convert_to_gguf(test::dit_dir("i2v") / "diffusers", missing, WanWeightFormat::q8_0);
  }, "no_such_folder");
  EXPECT_FALSE(fs::exists(missing.parent_path()));
}

// ---- hostile files ------------------------------------------------------------------------

// Builds GGUF bytes field by field, so each test can break exactly one thing.
struct Builder {
  std::vector<std::byte> b;
  Builder& raw(const void* p, size_t n) {
    const auto* c = static_cast<const std::byte*>(p);
    b.insert(b.end(), c, c + n);
    return *this;
  }
  Builder& u32(uint32_t v) { return raw(&v, 4); }
  Builder& u64(uint64_t v) { return raw(&v, 8); }
  Builder& str(const std::string& s) { return u64(s.size()).raw(s.data(), s.size()); }
  Builder& header(uint64_t tensors, uint64_t kvs, uint32_t version = 3) { return raw("GGUF", 4).u32(version).u64(tensors).u64(kvs); }
  Builder& tensor(const std::string& name, std::vector<uint64_t> ne, uint32_t type, uint64_t offset) {
    str(name).u32(uint32_t(ne.size()));
    for (uint64_t n : ne) u64(n);
    return u32(type).u64(offset);
  }
  Builder& pad_to(size_t align) {
    while (b.size() % align) b.push_back(std::byte{0});
    return *this;
  }
  Builder& data(size_t n) {
    for (size_t i = 0; i < n; ++i) b.push_back(std::byte(uint8_t(i * 37 + 11)));
    return *this;
  }
};

// parse_gguf on an exact-size heap copy (so ASan sees any over-read); the Error it throws.
std::optional<Error> parse_error(const std::vector<std::byte>& bytes) {
  const std::vector<std::byte> copy(bytes);
  try {
    detail::parse_gguf(copy, "hostile.gguf");
  } catch (const Error& e) {
    return e;
  }
  return std::nullopt;
}

void expect_refused(const std::vector<std::byte>& bytes, StatusCode code, const std::string& words) {
  const std::optional<Error> e = parse_error(bytes);
  ASSERT_TRUE(e.has_value()) << "accepted; expected: " << words;
  EXPECT_EQ(e->code(), code) << e->what();
  EXPECT_THAT(e->what(), HasSubstr(words));
  EXPECT_THAT(e->what(), HasSubstr("hostile.gguf"));
}

TEST(GgufHostile, BuilderMakesAValidFile) {  // the control for every case below
  Builder f;
  f.header(2, 1).str("general.name").u32(8).str("x");
  f.tensor("a", {32, 2}, 8, 0).tensor("b", {4}, 0, 96).pad_to(32).data(96 + 16);
  const detail::GgufLayout g = detail::parse_gguf(f.b, "ok");
  ASSERT_EQ(g.tensors.size(), 2u);
  EXPECT_EQ(g.tensors[0].shape, Shape({2, 32}));
  EXPECT_EQ(g.tensors[0].bytes, 68u);
  EXPECT_EQ(g.tensors[1].offset, g.data_start + 96);
  EXPECT_EQ(g.metadata.at("general.name"), "x");
}

TEST(GgufHostile, EveryTruncationIsRefusedWithoutReadingPastTheEnd) {
  const std::vector<std::byte> full = read_bytes(gguf_dir() / "types.gguf");
  const detail::GgufLayout g = detail::parse_gguf(full, "types.gguf");
  uint64_t data_end = 0;
  for (const auto& t : g.tensors) data_end = std::max(data_end, t.offset + t.bytes);
  for (size_t n = 0; n < data_end; ++n) {
    const std::vector<std::byte> cut(full.begin(), full.begin() + std::ptrdiff_t(n));
    const std::optional<Error> e = parse_error(cut);
    ASSERT_TRUE(e.has_value()) << "truncated to " << n << " bytes and accepted";
    ASSERT_EQ(e->code(), StatusCode::bad_format) << n << ": " << e->what();
  }
  // Through WeightStore as well (the mapped-file path), at a few places.
  for (size_t n : {size_t(3), size_t(40), size_t(g.data_start - 1), size_t(data_end - 1)}) {
    const fs::path p = write_tmp("gguf_truncated.gguf", std::vector<std::byte>(full.begin(), full.begin() + std::ptrdiff_t(n)));
    try {
      WeightStore::open(p);
      FAIL() << n;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), StatusCode::bad_format) << e.what();
    }
  }
}

TEST(GgufHostile, BadMagicAndVersions) {
  Builder f;
  f.header(0, 0);
  std::vector<std::byte> bad = f.b;
  bad[3] = std::byte{'X'};
  expect_refused(bad, StatusCode::bad_format, "magic");
  const fs::path p = write_tmp("gguf_bad_magic.gguf", bad);
  try {
    WeightStore::open(p);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::bad_format);
    EXPECT_THAT(e.what(), HasSubstr("GGUF magic"));
  }
  expect_refused(Builder().header(0, 0, 1).b, StatusCode::unsupported, "version 1");
  expect_refused(Builder().header(0, 0, 0x03000000).b, StatusCode::unsupported, "big-endian");
  EXPECT_FALSE(parse_error(Builder().header(0, 0, 2).b).has_value());  // v2 reads
}

TEST(GgufHostile, HugeCountsAndLengths) {
  expect_refused(Builder().header(uint64_t(1) << 62, 0).b, StatusCode::bad_format, "tensors, more than the file");
  expect_refused(Builder().header(0, ~uint64_t(0)).b, StatusCode::bad_format, "key-value pairs, more than the file");
  expect_refused(Builder().header(0, 1).u64(~uint64_t(0)).data(20).b, StatusCode::bad_format, "file ends inside a metadata key");
  expect_refused(Builder().header(0, 1).str("k").u32(9).u32(4).u64(uint64_t(1) << 61).data(20).b, StatusCode::bad_format,
                 "larger than the rest of the file");
  expect_refused(Builder().header(0, 1).str("k").u32(9).u32(8).u64(uint64_t(1) << 40).data(20).b, StatusCode::bad_format,
                 "larger than the rest of the file");
  expect_refused(Builder().header(1, 0).u64(uint64_t(1) << 40).data(40).b, StatusCode::bad_format,
                 "file ends inside a tensor name");
}

TEST(GgufHostile, BadValues) {
  expect_refused(Builder().header(0, 1).str("k").u32(13).data(16).b, StatusCode::bad_format, "value type 13 is unknown");
  expect_refused(Builder().header(0, 1).str("k").u32(9).u32(9).u64(1).data(32).b, StatusCode::bad_format, "nested arrays");
  expect_refused(Builder().header(0, 1).str("k").u32(9).u32(77).u64(1).data(32).b, StatusCode::bad_format, "element type 77");
  expect_refused(Builder().header(0, 1).str("k").u32(7).raw("\x02", 1).data(16).b, StatusCode::bad_format, "BOOL value 2");
  expect_refused(Builder().header(0, 2).str("k").u32(4).u32(1).str("k").u32(4).u32(2).data(16).b, StatusCode::bad_format,
                 "'k' appears twice");
  expect_refused(Builder().header(0, 1).str("k\xff").u32(4).u32(1).data(16).b, StatusCode::bad_format, "not valid UTF-8");
  expect_refused(Builder().header(0, 1).str("general.alignment").u32(4).u32(48).data(16).b, StatusCode::bad_format,
                 "not a power of two");
  expect_refused(Builder().header(0, 1).str("general.alignment").u32(0).u32(0).data(16).b, StatusCode::bad_format,
                 "expected UINT32");
}

TEST(GgufHostile, BadTensorInfos) {
  auto one = [](const std::string& name, std::vector<uint64_t> ne, uint32_t type, uint64_t offset, size_t data) {
    Builder f;
    f.header(1, 0).tensor(name, std::move(ne), type, offset).pad_to(32).data(data);
    return f.b;
  };
  expect_refused(one("t", {32}, 8, 64, 64), StatusCode::bad_format, "run past its end");
  expect_refused(one("t", {32}, 8, ~uint64_t(0) - 31, 64), StatusCode::bad_format, "run past its end");
  expect_refused(one("t", {4}, 0, 8, 64), StatusCode::bad_format, "not a multiple of the alignment 32");
  expect_refused(one("t", {uint64_t(1) << 32, uint64_t(1) << 32, 4}, 0, 0, 64), StatusCode::bad_format,
                 "product of its dimensions overflows");
  expect_refused(one("t", {uint64_t(1) << 62, 2}, 0, 0, 64), StatusCode::bad_format, "overflows");
  // 0 elements, but reel::Shape still needs the other dimensions' product to fit (found by fuzz_gguf).
  expect_refused(one("t", {0, uint64_t(1) << 58, 32}, 0, 0, 64), StatusCode::bad_format, "overflows");
  expect_refused(one("t", {uint64_t(1) << 60}, 0, 0, 64), StatusCode::bad_format, "run past its end");  // bytes = 2^62
  expect_refused(one("t", {33}, 8, 0, 64), StatusCode::bad_format, "not a multiple of Q8_0's block of 32");
  expect_refused(one("t", {1, 1, 1, 1, 1}, 0, 0, 64), StatusCode::bad_format, "5 dimensions");
  expect_refused(one("t", {}, 0, 0, 64), StatusCode::bad_format, "0 dimensions");
  expect_refused(one("t", {32}, 99, 0, 64), StatusCode::unsupported, "unknown (ggml type 99)");
  expect_refused(one("t", {256}, 16, 0, 512), StatusCode::unsupported, "IQ2_XXS");
  expect_refused(one("t", {256}, 15, 0, 512), StatusCode::unsupported, "Q8_K");

  Builder dup;
  dup.header(2, 0).tensor("t", {4}, 0, 0).tensor("t", {4}, 0, 32).pad_to(32).data(64);
  expect_refused(dup.b, StatusCode::bad_format, "'t' appears twice");
  Builder overlap;
  overlap.header(2, 0).tensor("a", {16}, 0, 0).tensor("b", {4}, 0, 32).pad_to(32).data(96);
  expect_refused(overlap.b, StatusCode::bad_format, "overlap");
  Builder shape;
  shape.header(1, 1).str("comfy.gguf.orig_shape.t").u32(9).u32(5).u64(2).u32(3).u32(3);
  shape.tensor("t", {4}, 0, 0).pad_to(32).data(32);
  expect_refused(shape.b, StatusCode::bad_format, "comfy.gguf.orig_shape [3, 3] does not fit its 4 elements");
}

TEST(GgufHostile, RandomByteFlipsNeverCrash) {
  const std::vector<std::byte> full = read_bytes(gguf_dir() / "types.gguf");
  const detail::GgufLayout g = detail::parse_gguf(full, "types.gguf");
  std::mt19937 rng(7);
  for (int i = 0; i < 3000; ++i) {
    std::vector<std::byte> f = full;
    for (int k = 0; k < 1 + i % 4; ++k) f[rng() % g.data_start] = std::byte(uint8_t(rng()));
    const std::optional<Error> e = parse_error(f);  // accepted or refused with an Error: both fine
    if (e) EXPECT_TRUE(e->code() == StatusCode::bad_format || e->code() == StatusCode::unsupported) << e->what();
  }
}

}  // namespace
}  // namespace reel
