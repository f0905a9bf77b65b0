// Umt5Tokenizer: SentencePiece (Debian's libsentencepiece) with the T5 / umT5 conventions of
// transformers' T5 tokenizer, which the Wan pipelines use: special-token strings matched in
// the raw text, byte-fallback pieces reported as one <unk> per unknown span, `</s>` appended,
// truncation to max_length − 1 tokens, padding with <pad>.
#include <sentencepiece_processor.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "reel/text_encoder.hpp"
#include "text/utf8.hpp"
#include "weights/strict_json.hpp"

namespace reel {

namespace {

constexpr std::string_view kSentinelPrefix = "<extra_id_";
constexpr int kMaxLength = 1 << 20;  // a bound on caller-given lengths (umT5 uses 512)

std::string read_file(const std::filesystem::path& path, uintmax_t limit) {
  return detail::read_small_file(path, "tokenizer file", limit);
}

std::filesystem::path find_spiece(const std::filesystem::path& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) return path;
  if (fs::is_directory(path, ec)) {
    for (const fs::path& candidate : {path / "spiece.model", path / "tokenizer" / "spiece.model"})
      if (fs::is_regular_file(candidate, ec)) return candidate;
    throw Error(StatusCode::not_found, "no SentencePiece model in " + path.string() + " (looked for " +
                                           (path / "spiece.model").string() + " and " +
                                           (path / "tokenizer" / "spiece.model").string() + ")");
  }
  throw Error(StatusCode::not_found, "tokenizer model " + path.string() + " does not exist");
}

// Sentinel count from tokenizer_config.json beside the model; 0 when there is none.
int64_t read_extra_ids(const std::filesystem::path& folder) {
  const std::filesystem::path config = folder / "tokenizer_config.json";
  std::error_code ec;
  if (!std::filesystem::is_regular_file(config, ec)) return 0;
  const nlohmann::json j = nlohmann::json::parse(read_file(config, 64u << 20), nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw Error(StatusCode::bad_format, config.string() + " is not a JSON object");
  if (auto it = j.find("extra_ids"); it != j.end()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > 100000)
      throw Error(StatusCode::bad_format, config.string() + ": \"extra_ids\" must be an integer in [0, 100000]");
    return it->get<int64_t>();
  }
  int64_t count = 0;
  if (auto it = j.find("additional_special_tokens"); it != j.end() && it->is_array())
    for (const auto& token : *it) {
      const nlohmann::json* s = &token;
      if (token.is_object() && token.contains("content")) s = &token["content"];
      if (s->is_string() && s->get<std::string>().starts_with(kSentinelPrefix)) ++count;
    }
  return count;
}

}  // namespace

std::vector<int32_t> TokenizedPrompt::attention_mask() const {
  std::vector<int32_t> mask(ids.size(), 0);
  for (int64_t i = 0; i < length && i < int64_t(ids.size()); ++i) mask[size_t(i)] = 1;
  return mask;
}

struct Umt5Tokenizer::Impl {
  sentencepiece::SentencePieceProcessor sp;
  int64_t pieces = 0;
  int64_t extra_ids = 0;
  int32_t pad = 0, eos = 1, unk = 2;
  std::vector<std::pair<std::string, int32_t>> specials;  // "</s>", "<pad>", "<unk>"

  // Length and id of the special token that starts at text[pos], or {0, -1}.
  std::pair<size_t, int32_t> special_at(std::string_view text, size_t pos) const {
    const std::string_view rest = text.substr(pos);
    for (const auto& [piece, id] : specials)
      if (rest.starts_with(piece)) return {piece.size(), id};
    if (extra_ids > 0 && rest.starts_with(kSentinelPrefix)) {
      size_t i = kSentinelPrefix.size();
      int64_t n = 0;
      const size_t first = i;
      while (i < rest.size() && rest[i] >= '0' && rest[i] <= '9' && i - first < 9) n = n * 10 + (rest[i++] - '0');
      const bool canonical = i > first && (rest[first] != '0' || i == first + 1);
      if (canonical && i < rest.size() && rest[i] == '>' && n < extra_ids)
        return {i + 1, int32_t(pieces + extra_ids - 1 - n)};
    }
    return {0, -1};
  }
};

Umt5Tokenizer Umt5Tokenizer::open(const std::filesystem::path& path) {
  const std::filesystem::path model = find_spiece(path);
  auto impl = std::make_shared<Impl>();
  const std::string bytes = read_file(model, 1u << 30);
  const auto status = impl->sp.LoadFromSerializedProto(bytes);
  if (!status.ok())
    throw Error(StatusCode::bad_format, model.string() + " is not a SentencePiece model: " + status.ToString());
  impl->pieces = impl->sp.GetPieceSize();
  if (impl->sp.eos_id() < 0 || impl->sp.unk_id() < 0)
    throw Error(StatusCode::bad_format, model.string() + " has no </s> or <unk> piece (a T5 tokenizer needs both)");
  impl->eos = impl->sp.eos_id();
  impl->unk = impl->sp.unk_id();
  impl->pad = impl->sp.pad_id() >= 0 ? impl->sp.pad_id() : 0;
  impl->extra_ids = read_extra_ids(model.parent_path());
  for (int32_t id : {impl->eos, impl->pad, impl->unk}) impl->specials.emplace_back(impl->sp.IdToPiece(id), id);
  Umt5Tokenizer t;
  t.impl_ = std::move(impl);
  return t;
}

std::vector<int32_t> Umt5Tokenizer::tokenize(std::string_view text, const TokenizerOptions& options) const {
  if (!options.clean) (void)reel::text::utf8_decode(text);  // validates (clean_prompt does it otherwise)
  const std::string cleaned = options.clean ? clean_prompt(text) : std::string(text);
  std::vector<int32_t> out;
  const std::string_view s = cleaned;
  size_t segment = 0, pos = 0;  // start of the pending SentencePiece text; scan position
  bool last_unknown = false;
  auto flush = [&](size_t end) {
    if (end > segment) {
      std::vector<int> ids;
      const auto status = impl_->sp.Encode(s.substr(segment, end - segment), &ids);
      if (!status.ok())
        throw Error(StatusCode::internal, "sentencepiece failed to encode a prompt: " + status.ToString());
      for (int id : ids) {
        const bool unknown = options.bytes_as_unk && (impl_->sp.IsByte(id) || id == impl_->unk);
        if (unknown && last_unknown) continue;  // one <unk> per unknown span
        out.push_back(unknown ? impl_->unk : int32_t(id));
        last_unknown = unknown;
      }
    }
  };
  while (pos < s.size()) {
    const size_t next = s.find('<', pos);
    if (next == std::string_view::npos) break;
    const auto [length, id] = impl_->special_at(s, next);
    if (length == 0) {
      pos = next + 1;
      continue;
    }
    flush(next);
    out.push_back(id);
    last_unknown = false;
    pos = segment = next + length;
  }
  flush(s.size());
  return out;
}

TokenizedPrompt Umt5Tokenizer::encode(std::string_view prompt, const TokenizerOptions& options) const {
  require(options.max_length >= 1 && options.max_length <= kMaxLength, StatusCode::invalid_argument,
          "tokenizer max_length must be in [1, " + std::to_string(kMaxLength) + "], got " +
              std::to_string(options.max_length));
  std::vector<int32_t> ids = tokenize(prompt, options);
  if (int64_t(ids.size()) > options.max_length - 1) ids.resize(size_t(options.max_length - 1));
  ids.push_back(impl_->eos);
  TokenizedPrompt out;
  out.length = int64_t(ids.size());
  ids.resize(size_t(options.max_length), impl_->pad);
  out.ids = std::move(ids);
  return out;
}

int64_t Umt5Tokenizer::vocab_size() const { return impl_->pieces + impl_->extra_ids; }
int64_t Umt5Tokenizer::extra_ids() const { return impl_->extra_ids; }
int32_t Umt5Tokenizer::pad_id() const { return impl_->pad; }
int32_t Umt5Tokenizer::eos_id() const { return impl_->eos; }
int32_t Umt5Tokenizer::unk_id() const { return impl_->unk; }

}  // namespace reel
