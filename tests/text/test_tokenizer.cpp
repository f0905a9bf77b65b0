// Umt5Tokenizer against transformers' T5Tokenizer (the tokenizer the Wan pipelines use) on the
// fixture SentencePiece model: ids after diffusers' prompt_clean at max_length 64 and at the
// default 512 (truncation keeps `</s>`), raw ids without the clean-up, sentencepiece's own ids
// with byte pieces kept; and the failure modes (missing or corrupt model, bad lengths).
#include <gtest/gtest.h>

#include <fstream>

#include "text/text_fixtures.hpp"

namespace reel {
namespace {

const Umt5Tokenizer& tokenizer() {
  static const Umt5Tokenizer t = Umt5Tokenizer::open(test::text_dir() / "tokenizer");
  return t;
}

std::string show(const std::vector<int32_t>& v) {
  std::string s;
  for (int32_t x : v) s += std::to_string(x) + " ";
  return s;
}

TEST(Umt5Tokenizer, SpecialIdsAndVocabulary) {
  const test::TextCases& c = test::text_cases();
  const Umt5Tokenizer& t = tokenizer();
  EXPECT_EQ(t.pad_id(), 0);
  EXPECT_EQ(t.eos_id(), 1);
  EXPECT_EQ(t.unk_id(), 2);
  EXPECT_EQ(t.extra_ids(), c.extra_ids);
  EXPECT_EQ(t.vocab_size(), c.spm_vocab + c.extra_ids);
  // Opening the model file itself finds the same folder's tokenizer_config.json.
  EXPECT_EQ(Umt5Tokenizer::open(test::text_dir() / "tokenizer" / "spiece.model").vocab_size(), t.vocab_size());
}

TEST(Umt5Tokenizer, IdsMatchTransformersAtMaxLength64) {
  const test::TextCases& c = test::text_cases();
  for (const test::TokenizerCase& tc : c.tokenizer) {
    const TokenizedPrompt p = tokenizer().encode(tc.prompt, {.max_length = c.max_length});
    EXPECT_EQ(p.ids, tc.ids_64) << "prompt: " << tc.prompt << "\n got: " << show(p.ids) << "\nwant: " << show(tc.ids_64);
    EXPECT_EQ(p.length, tc.seq_len_64) << tc.prompt;
    const std::vector<int32_t> mask = p.attention_mask();
    for (size_t i = 0; i < mask.size(); ++i) EXPECT_EQ(mask[i], int64_t(i) < tc.seq_len_64 ? 1 : 0);
  }
}

TEST(Umt5Tokenizer, IdsMatchTransformersAtTheDefault512) {
  bool truncated = false;
  for (const test::TokenizerCase& tc : test::text_cases().tokenizer) {
    const TokenizedPrompt p = tokenizer().encode(tc.prompt);  // default options: clean, 512
    ASSERT_EQ(p.ids.size(), 512u);
    EXPECT_EQ(p.ids, tc.ids_512) << "prompt: " << tc.prompt;
    if (p.length == 512) {
      truncated = true;
      EXPECT_EQ(p.ids.back(), 1) << "truncation must keep </s> last";
    }
  }
  EXPECT_TRUE(truncated) << "the fixture's long prompt must exceed 512 tokens";
}

// Without the clean-up (raw text straight into the tokenizer), as transformers' tokenizer sees it.
TEST(Umt5Tokenizer, RawIdsMatchTransformers) {
  for (const test::TokenizerCase& tc : test::text_cases().tokenizer) {
    std::vector<int32_t> ids = tokenizer().tokenize(tc.prompt, {.clean = false});
    ids.push_back(tokenizer().eos_id());
    EXPECT_EQ(ids, tc.raw_ids) << "prompt: " << tc.prompt << "\n got: " << show(ids) << "\nwant: " << show(tc.raw_ids);
  }
}

// bytes_as_unk = false: sentencepiece's own output (byte-fallback pieces for emoji etc.).
TEST(Umt5Tokenizer, BytePiecesMatchSentencepiece) {
  int with_bytes = 0;
  for (const test::TokenizerCase& tc : test::text_cases().tokenizer) {
    if (!tc.spm_ids || tc.ftfy_only) continue;
    const std::vector<int32_t> ids = tokenizer().tokenize(tc.prompt, {.bytes_as_unk = false});
    EXPECT_EQ(ids, *tc.spm_ids) << "prompt: " << tc.prompt;
    if (ids != tokenizer().tokenize(tc.prompt)) ++with_bytes;
  }
  EXPECT_GE(with_bytes, 3) << "emoji / unknown characters must exercise the byte pieces";
}

TEST(Umt5Tokenizer, MaxLengthBounds) {
  EXPECT_THROW((void)tokenizer().encode("a cat", {.max_length = 0}), Error);
  try {
    (void)tokenizer().encode("a cat", {.max_length = -5});
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("max_length"), std::string::npos);
  }
  const TokenizedPrompt one = tokenizer().encode("a cat runs", {.max_length = 1});
  EXPECT_EQ(one.ids, std::vector<int32_t>{1});
  EXPECT_EQ(one.length, 1);
}

TEST(Umt5Tokenizer, MissingModelIsNotFoundNamingThePath) {
  const std::filesystem::path missing = test::tmp_dir() / "no_such_tokenizer" / "spiece.model";
  try {
    (void)Umt5Tokenizer::open(missing);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::not_found);
    EXPECT_NE(std::string(e.what()).find(missing.string()), std::string::npos) << e.what();
  }
  const std::filesystem::path empty = test::tmp_dir() / "empty_tokenizer_folder";
  std::filesystem::create_directories(empty);
  try {
    (void)Umt5Tokenizer::open(empty);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::not_found);
    EXPECT_NE(std::string(e.what()).find((empty / "spiece.model").string()), std::string::npos) << e.what();
  }
}

TEST(Umt5Tokenizer, CorruptModelIsBadFormat) {
  const std::filesystem::path dir = test::tmp_dir() / "corrupt_tokenizer";
  std::filesystem::create_directories(dir);
  {
    std::ofstream out(dir / "spiece.model", std::ios::binary);
    out << "this is not a protobuf \x01\x02\x03";
  }
  try {
    (void)Umt5Tokenizer::open(dir);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::bad_format);
    EXPECT_NE(std::string(e.what()).find("spiece.model"), std::string::npos) << e.what();
  }
}

TEST(Umt5Tokenizer, SentinelCountFromTokenizerConfig) {
  const std::filesystem::path dir = test::tmp_dir() / "tokenizer_sentinels";
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(test::text_dir() / "tokenizer" / "spiece.model", dir / "spiece.model",
                             std::filesystem::copy_options::overwrite_existing);
  {
    std::ofstream out(dir / "tokenizer_config.json");
    out << R"({"additional_special_tokens": ["<extra_id_0>", "<extra_id_1>", {"content": "<extra_id_2>"}, "<other>"]})";
  }
  const Umt5Tokenizer t = Umt5Tokenizer::open(dir);
  EXPECT_EQ(t.extra_ids(), 3);
  // <extra_id_0> is the highest id, as transformers' T5 converter numbers them.
  EXPECT_EQ(t.tokenize("<extra_id_0>"), std::vector<int32_t>{int32_t(t.vocab_size() - 1)});
  EXPECT_EQ(t.tokenize("<extra_id_2>"), std::vector<int32_t>{int32_t(t.vocab_size() - 3)});
  {
    std::ofstream out(dir / "tokenizer_config.json");
    out << "{not json";
  }
  try {
    (void)Umt5Tokenizer::open(dir);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::bad_format);
    EXPECT_NE(std::string(e.what()).find("tokenizer_config.json"), std::string::npos) << e.what();
  }
}

TEST(Umt5Tokenizer, RejectsMalformedUtf8EvenWithoutCleanUp) {
  EXPECT_THROW((void)tokenizer().tokenize("bad \xff", {.clean = false}), Error);
  EXPECT_THROW((void)tokenizer().encode("bad \xc3"), Error);
}

}  // namespace
}  // namespace reel
