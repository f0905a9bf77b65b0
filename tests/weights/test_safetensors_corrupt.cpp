// Hostile and broken inputs: the committed corpus tests/fixtures/safetensors_corrupt/ (made by
// tools/reference/make_corrupt_safetensors.py), attacks through a sharded index, pickle refusal,
// and seeded truncations/mutations of valid files. Each must give a reel::Error with the right
// code and a message naming the file and the cause; none may crash.
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <set>

#include "common/test_util.hpp"
#include "reel/weights.hpp"
#include "weights/safetensors_header.hpp"

using namespace reel;
namespace fs = std::filesystem;

namespace {

struct CorruptCase {
  const char* file;  // in tests/fixtures/safetensors_corrupt/, without ".safetensors"
  const char* message;  // a substring the error message must hold
};

// Every file of the corpus, with the cause its error must name. All are StatusCode::bad_format.
const CorruptCase kCorpus[] = {
    {"empty_file", "empty (0 bytes)"},
    {"seven_bytes", "7 bytes, too short"},
    {"truncated", "tensor 'a': data_offsets [0, 8] run past the end of the file (the data section holds 7 bytes)"},
    {"truncated_in_header", "runs past the end of the file"},
    {"header_length_past_end", "runs past the end of the file"},
    {"header_length_huge", "claims 200000000 bytes, more than the limit of 100000000"},
    {"header_length_u64_max", "claims 18446744073709551615 bytes, more than the limit"},
    {"header_length_zero", "header is not valid JSON"},
    {"overlapping_ranges", "tensor 'b': data_offsets [6, 10] overlap tensor 'a' [0, 8]"},
    {"gap_between_ranges", "2 unused bytes (a gap) before tensor 'b'"},
    {"gap_at_start", "4 unused bytes (a gap) before tensor 'a'"},
    {"out_of_file_range", "tensor 'b': data_offsets [8, 16] run past the end of the file"},
    {"offsets_u64_max", "run past the end of the file"},
    {"trailing_bytes", "8 trailing bytes after the last tensor"},
    {"begin_greater_than_end", "tensor 'a': data_offsets [8, 0] has begin > end"},
    {"shape_size_mismatch", "tensor 'a': data_offsets [0, 8] hold 8 bytes but shape [3] of F32 needs 12"},
    {"duplicate_tensor_name", "duplicate tensor name 'a'"},
    {"duplicate_metadata_key", "duplicate metadata key 'format'"},
    {"duplicate_metadata_block", "duplicate key '__metadata__'"},
    {"duplicate_field", "tensor 'a': duplicate field 'dtype'"},
    {"unknown_dtype", "tensor 'a': dtype 'Q9_X' is not supported"},
    {"unsupported_dtype_i64", "tensor 'a': dtype 'I64' is not supported (reel reads F32, F16, BF16, F8_E4M3"},
    {"unsupported_dtype_u8", "tensor 'a': dtype 'U8' is not supported"},
    {"enormous_dims", "tensor 'a': shape [1099511627776, 1099511627776, 1099511627776] has too many elements"},
    {"dims_product_wraps_to_2", "has too many elements"},
    {"zero_and_huge_dim", "has too many elements"},
    {"dim_beyond_u64", "shape holds the non-integer '18446744073709551616'"},
    {"negative_dim", "tensor 'a': shape holds a negative value -2"},
    {"float_dim", "tensor 'a': shape holds the non-integer '2.0'"},
    {"rank6", "tensor 'a': rank 6 exceeds reel's limit of 5 dimensions"},
    {"non_utf8_header", "header is not valid UTF-8 (at byte 3)"},
    {"overlong_utf8_header", "header is not valid UTF-8"},
    {"surrogate_utf8_header", "header is not valid UTF-8"},
    {"non_json_header", "header is not valid JSON"},
    {"json_trailing_garbage", "header is not valid JSON"},
    {"json_comment", "header is not valid JSON"},
    {"json_array", "header is an array, not a JSON object"},
    {"json_deeply_nested", "header is an array, not a JSON object"},
    {"json_string", "header is a string, not a JSON object"},
    {"missing_dtype", "tensor 'a': missing field 'dtype'"},
    {"missing_shape", "tensor 'a': missing field 'shape'"},
    {"missing_data_offsets", "tensor 'a': missing field 'data_offsets'"},
    {"unknown_field", "tensor 'a': unknown field 'extra'"},
    {"dtype_not_string", "tensor 'a': field 'dtype' is a number, expected a string"},
    {"shape_not_array", "tensor 'a': field 'shape' is a string, expected an array of integers"},
    {"shape_holds_string", "tensor 'a': shape holds a string, expected integers"},
    {"offsets_not_array", "tensor 'a': field 'data_offsets' is an object"},
    {"offsets_three_values", "tensor 'a': data_offsets holds more than 2 values"},
    {"offsets_one_value", "tensor 'a': data_offsets holds 1 values, expected 2"},
    {"offsets_negative", "tensor 'a': data_offsets holds a negative value -8"},
    {"tensor_not_object", "tensor 'a': entry is an array, expected an object"},
    {"metadata_not_object", "__metadata__ is a string, expected an object of strings"},
    {"metadata_value_not_string", "__metadata__ value for key 'step' is a number, expected a string"},
    {"empty_tensor_name", "empty tensor name"},
};

fs::path corpus_dir() { return test::fixtures_dir() / "safetensors_corrupt"; }
fs::path valid_dir() { return test::fixtures_dir() / "safetensors_valid"; }

// Opens `path`, expecting an Error with `code` whose message holds every one of `parts`.
void expect_error(const fs::path& path, StatusCode code, const std::vector<std::string>& parts) {
  try {
    const WeightStore s = WeightStore::open(path);
    ADD_FAILURE() << path << ": opened without error (" << s.size() << " tensors)";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << path << ": " << e.what();
    for (const std::string& part : parts)
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << "message lacks \"" << part << "\": " << e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << path << ": threw a non-reel exception: " << e.what();
  }
}

std::vector<std::byte> read_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::vector<char> c((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::vector<std::byte> b(c.size());
  std::memcpy(b.data(), c.data(), c.size());
  return b;
}

void write_text(const fs::path& p, const std::string& text) {
  std::ofstream f(p, std::ios::binary);
  f << text;
}

}  // namespace

TEST(SafetensorsCorrupt, EveryCorpusFileFailsWithItsCause) {
  for (const CorruptCase& c : kCorpus) {
    SCOPED_TRACE(c.file);
    const fs::path p = corpus_dir() / (std::string(c.file) + ".safetensors");
    ASSERT_TRUE(fs::exists(p)) << p << " is missing: run tools/reference/make_corrupt_safetensors.py";
    expect_error(p, StatusCode::bad_format, {p.string(), c.message});
  }
}

TEST(SafetensorsCorrupt, TheTableCoversTheWholeCorpus) {
  std::set<std::string> listed;
  for (const CorruptCase& c : kCorpus) EXPECT_TRUE(listed.insert(c.file).second) << "listed twice: " << c.file;
  size_t files = 0;
  for (const auto& entry : fs::directory_iterator(corpus_dir())) {
    ++files;
    EXPECT_TRUE(listed.count(entry.path().stem().string())) << entry.path() << " has no expectation in kCorpus";
  }
  EXPECT_EQ(files, listed.size());
}

TEST(SafetensorsCorrupt, EveryTruncationOfAValidFileIsRejected) {
  for (const char* name : {"all_dtypes", "torch_reference"}) {
    const std::vector<std::byte> bytes = read_bytes(valid_dir() / (std::string(name) + ".safetensors"));
    ASSERT_GT(bytes.size(), 100u);
    EXPECT_NO_THROW(detail::parse_safetensors(bytes, name));
    for (size_t n = 0; n < bytes.size(); ++n) {
      try {
        detail::parse_safetensors(std::span(bytes.data(), n), name);
        ADD_FAILURE() << name << " truncated to " << n << " bytes was accepted";
      } catch (const Error& e) {
        ASSERT_EQ(e.code(), StatusCode::bad_format) << e.what();
        ASSERT_EQ(std::string(e.what()).rfind(name, 0), 0u) << e.what();
      }
    }
  }
}

TEST(SafetensorsCorrupt, SeededByteMutationsNeverEscapeAsOtherErrors) {
  // A small in-process fuzz (the libFuzzer target in tests/fuzz/ goes much further): flip,
  // overwrite or insert bytes of valid files; the parser must accept or throw bad_format.
  std::mt19937_64 rng(20240611);
  size_t accepted = 0, rejected = 0;
  for (const char* name : {"all_dtypes", "two_tensors", "misaligned"}) {
    const std::vector<std::byte> original = read_bytes(valid_dir() / (std::string(name) + ".safetensors"));
    for (int round = 0; round < 3000; ++round) {
      std::vector<std::byte> b = original;
      const int edits = 1 + int(rng() % 4);
      for (int k = 0; k < edits; ++k) {
        const size_t at = rng() % b.size();
        switch (rng() % 3) {
          case 0: b[at] ^= std::byte(1u << (rng() % 8)); break;
          case 1: b[at] = std::byte("0123456789{}[],:\"-.eE \xff"[rng() % 24]); break;
          default: b.insert(b.begin() + std::ptrdiff_t(at), std::byte(rng() & 0xff)); break;
        }
      }
      try {
        const detail::SafetensorsLayout layout = detail::parse_safetensors(b, name);
        for (const auto& t : layout.tensors) ASSERT_LE(layout.data_start + t.end, b.size());
        ++accepted;
      } catch (const Error& e) {
        ASSERT_EQ(e.code(), StatusCode::bad_format) << e.what();
        ++rejected;
      }
    }
  }
  EXPECT_GT(rejected, 0u);
  std::printf("mutations: %zu accepted, %zu rejected\n", accepted, rejected);
}

TEST(SafetensorsCorrupt, PickleCheckpointsAreRefusedWithAdvice) {
  const fs::path dir = test::tmp_dir() / "weights_pickle";
  fs::remove_all(dir);
  fs::create_directories(dir);
  write_text(dir / "Wan2.1_VAE.pth", "PK\x03\x04 not parsed");
  write_text(dir / "pytorch_model.bin", "\x80\x02 not parsed");
  for (const fs::path& p : {dir, dir / "Wan2.1_VAE.pth", dir / "pytorch_model.bin"}) {
    SCOPED_TRACE(p.string());
    expect_error(p, StatusCode::unsupported, {p.string(), "never parses pickle", "Diffusers", "ComfyUI", ".safetensors"});
  }
  const fs::path empty = test::tmp_dir() / "weights_empty_folder";
  fs::remove_all(empty);
  fs::create_directories(empty);
  expect_error(empty, StatusCode::not_found, {empty.string(), "diffusion_pytorch_model.safetensors"});
  expect_error(empty / "nope.safetensors", StatusCode::not_found, {"nope.safetensors", "no such file"});
  expect_error(corpus_dir(), StatusCode::not_found, {"several safetensors files"});
}

// ---------------------------------------------------------------- sharded-index attacks

class ShardedIndexAttack : public ::testing::Test {
 protected:
  fs::path dir;
  void SetUp() override {
    dir = test::tmp_dir() / ("weights_attack_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    save_safetensors(dir / "s1.safetensors", {{"a", test::random_tensor({2}, 1)}, {"b", test::random_tensor({2}, 2)}});
    save_safetensors(dir / "s2.safetensors", {{"c", test::random_tensor({2}, 3)}});
  }
  fs::path index(const std::string& weight_map) {
    const fs::path p = dir / "model.safetensors.index.json";
    write_text(p, R"({"metadata": {"total_size": 24}, "weight_map": )" + weight_map + "}");
    return p;
  }
};

TEST_F(ShardedIndexAttack, ConsistentIndexOpens) {
  const WeightStore s = WeightStore::open(index(R"({"a": "s1.safetensors", "b": "s1.safetensors", "c": "s2.safetensors"})"));
  EXPECT_EQ(s.names(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(WeightStore::open(dir).size(), 3u);
}

TEST_F(ShardedIndexAttack, MissingShard) {
  const fs::path p = index(R"({"a": "s1.safetensors", "b": "s1.safetensors", "c": "s3.safetensors"})");
  expect_error(p, StatusCode::not_found, {p.string(), "shard 's3.safetensors' (listed for tensor 'c') does not exist"});
}

TEST_F(ShardedIndexAttack, PathTraversalAndAbsolutePathsAreRefused) {
  save_safetensors(dir.parent_path() / "outside.safetensors", {{"c", test::random_tensor({2}, 3)}});
  for (const std::string& shard : std::vector<std::string>{"../outside.safetensors", (dir.parent_path() / "outside.safetensors").string(),
                                  "sub/s2.safetensors", "..", ".", "", "s2.safetensors\\\\..\\\\x"}) {
    SCOPED_TRACE(shard);
    const fs::path p = index(R"({"a": "s1.safetensors", "b": "s1.safetensors", "c": ")" + shard + "\"}");
    expect_error(p, StatusCode::bad_format, {p.string(), "tensor 'c'", "is not a plain file name"});
  }
}

TEST_F(ShardedIndexAttack, TensorListedInTheWrongShard) {
  const fs::path p = index(R"({"a": "s1.safetensors", "b": "s2.safetensors", "c": "s2.safetensors"})");
  expect_error(p, StatusCode::bad_format,
               {p.string(), "tensor 'b' is in shard 's1.safetensors' but the index says it is in 's2.safetensors'"});
}

TEST_F(ShardedIndexAttack, TensorInTwoShards) {
  save_safetensors(dir / "s2.safetensors", {{"b", test::random_tensor({2}, 4)}, {"c", test::random_tensor({2}, 3)}});
  const fs::path p = index(R"({"a": "s1.safetensors", "b": "s1.safetensors", "c": "s2.safetensors"})");
  expect_error(p, StatusCode::bad_format, {p.string(), "tensor 'b' is in two shards, 's1.safetensors' and 's2.safetensors'"});
}

TEST_F(ShardedIndexAttack, IndexListsATensorTheShardLacks) {
  const fs::path p = index(R"({"a": "s1.safetensors", "b": "s1.safetensors", "c": "s2.safetensors", "d": "s2.safetensors"})");
  expect_error(p, StatusCode::bad_format, {p.string(), "lists tensor 'd' in shard 's2.safetensors', which does not hold it"});
}

TEST_F(ShardedIndexAttack, ShardHoldsATensorTheIndexDoesNotList) {
  const fs::path p = index(R"({"a": "s1.safetensors", "c": "s2.safetensors"})");
  expect_error(p, StatusCode::bad_format, {p.string(), "shard 's1.safetensors' holds tensor 'b', which the index does not list"});
}

TEST_F(ShardedIndexAttack, DuplicateKeyInTheIndex) {
  const fs::path p = index(R"({"a": "s1.safetensors", "b": "s1.safetensors", "c": "s2.safetensors", "a": "s2.safetensors"})");
  expect_error(p, StatusCode::bad_format, {p.string(), "duplicate key 'a'"});
}

TEST_F(ShardedIndexAttack, MalformedIndexes) {
  const fs::path p = dir / "model.safetensors.index.json";
  const std::pair<std::string, std::string> cases[] = {
      {"[1, 2]", "index is not a JSON object"},
      {R"({"metadata": {}})", "has no \"weight_map\""},
      {R"({"weight_map": ["s1.safetensors"]})", "\"weight_map\" is not an object"},
      {R"({"weight_map": {}})", "lists no tensors"},
      {R"({"weight_map": {"a": 3}})", "weight_map entry for tensor 'a' is not a file name string"},
      {R"({"weight_map": {"a": "s1.safetensors"})", "not valid JSON"},
      {"{\"weight_map\": {\"a\xff\": \"s1.safetensors\"}}", "not valid UTF-8"},
      {std::string(100000, '[') + std::string(100000, ']'), "nested deeper than 64 levels"},
      {R"({"weight_map": {"a": "pytorch_model-00001.bin"}})", "never parses pickle"},
  };
  for (const auto& [text, message] : cases) {
    SCOPED_TRACE(message);
    write_text(p, text);
    expect_error(p, message == "never parses pickle" ? StatusCode::unsupported : StatusCode::bad_format,
                 {p.string(), message});
  }
}
