// safetensors header parsing: a schema-aware SAX handler over nlohmann::json (duplicate keys are
// rejected; memory stays bounded by the number of tensors) and the data-section range checks.
#include "weights/safetensors_header.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "reel/status.hpp"

namespace reel {

std::string_view file_dtype_name(FileDType t) {
  switch (t) {
    case FileDType::f32: return "F32";
    case FileDType::f16: return "F16";
    case FileDType::bf16: return "BF16";
    case FileDType::f8_e4m3: return "F8_E4M3";
    case FileDType::f8_e5m2: return "F8_E5M2";
    case FileDType::q4_0: return "Q4_0";
    case FileDType::q4_1: return "Q4_1";
    case FileDType::q5_0: return "Q5_0";
    case FileDType::q5_1: return "Q5_1";
    case FileDType::q8_0: return "Q8_0";
    case FileDType::q2_k: return "Q2_K";
    case FileDType::q3_k: return "Q3_K";
    case FileDType::q4_k: return "Q4_K";
    case FileDType::q5_k: return "Q5_K";
    case FileDType::q6_k: return "Q6_K";
  }
  return "?";
}

namespace detail {

size_t file_dtype_size(FileDType t) {
  switch (t) {
    case FileDType::f32: return 4;
    case FileDType::f16: return 2;
    case FileDType::bf16: return 2;
    case FileDType::f8_e4m3: return 1;
    case FileDType::f8_e5m2: return 1;
    default: return 0;  // the GGUF block types have no per-element size (see gguf_dequant.hpp)
  }
}

std::optional<FileDType> parse_file_dtype(std::string_view s) {
  if (s == "F32") return FileDType::f32;
  if (s == "F16") return FileDType::f16;
  if (s == "BF16") return FileDType::bf16;
  if (s == "F8_E4M3") return FileDType::f8_e4m3;
  if (s == "F8_E5M2") return FileDType::f8_e5m2;
  return std::nullopt;
}

std::string quote_name(std::string_view name) {
  constexpr size_t kMax = 120;
  if (name.size() <= kMax) return "'" + std::string(name) + "'";
  size_t cut = kMax;
  while (cut > 0 && (static_cast<unsigned char>(name[cut]) & 0xc0u) == 0x80u) --cut;  // whole UTF-8 chars
  return "'" + std::string(name.substr(0, cut)) + "...' (" + std::to_string(name.size()) + " bytes)";
}

std::optional<size_t> find_invalid_utf8(std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const unsigned c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    unsigned lo = 0x80, hi = 0xbf;  // allowed range of the second byte
    if (c >= 0xc2 && c <= 0xdf) {
      len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
      len = 3;
      if (c == 0xe0) lo = 0xa0;  // no overlongs
      if (c == 0xed) hi = 0x9f;  // no surrogates
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4;
      if (c == 0xf0) lo = 0x90;  // no overlongs
      if (c == 0xf4) hi = 0x8f;  // nothing above U+10FFFF
    } else {
      return i;
    }
    if (n - i < len) return i;
    if (s[i + 1] < lo || s[i + 1] > hi) return i;
    for (size_t k = 2; k < len; ++k)
      if ((s[i + k] & 0xc0u) != 0x80u) return i;
    i += len;
  }
  return std::nullopt;
}

namespace {

using json = nlohmann::json;

// One tensor entry as read from the JSON, before the layout checks.
struct RawTensor {
  std::string name;
  std::string dtype;
  bool has_dtype = false, has_shape = false, has_offsets = false;
  std::vector<uint64_t> dims;  // at most kMaxRank stored; `rank` counts them all
  uint64_t rank = 0;
  uint64_t offsets[2] = {0, 0};
  uint64_t offsets_count = 0;
};

// Walks the header's JSON events and checks them against the safetensors schema as they come:
//   { "<name>": {"dtype": str, "shape": [uint...], "data_offsets": [uint, uint]}, ...,
//     "__metadata__": {str: str, ...} }
// It returns false (stopping the parse) at the first violation, with `error` set.
class HeaderSax {
 public:
  std::string error;
  std::vector<RawTensor> tensors;
  std::map<std::string, std::string> metadata;

  // ---- value events
  bool null() {
    if (state_ == State::root && key_ == "__metadata__") return true;  // the reference reader accepts null: no metadata
    return scalar("null");
  }
  bool boolean(bool) { return scalar("a boolean"); }
  bool number_integer(json::number_integer_t v) {
    if (v >= 0) return number(uint64_t(v));
    return in_array_of_uints() ? fail(field_prefix() + "holds a negative value " + std::to_string(v))
                               : scalar("a number");
  }
  bool number_unsigned(json::number_unsigned_t v) { return number(v); }
  bool number_float(json::number_float_t, const json::string_t& text) {
    return in_array_of_uints() ? fail(field_prefix() + "holds the non-integer " + quote_name(text)) : scalar("a number");
  }
  bool string(json::string_t& s) {
    if (state_ == State::metadata) {
      metadata.emplace(key_, s);
      return true;
    }
    if (state_ == State::tensor && key_ == "dtype") {
      current_.dtype = s;
      return true;
    }
    return scalar("a string");
  }
  bool binary(json::binary_t&) { return scalar("binary data"); }

  bool start_object(std::size_t) {
    switch (state_) {
      case State::start: state_ = State::root; return true;
      case State::root:
        if (key_ == "__metadata__") {
          state_ = State::metadata;
        } else {
          current_ = RawTensor{};
          current_.name = key_;
          state_ = State::tensor;
        }
        return true;
      default: return scalar("an object");
    }
  }
  bool start_array(std::size_t) {
    if (state_ == State::tensor && key_ == "shape") {
      state_ = State::shape;
      return true;
    }
    if (state_ == State::tensor && key_ == "data_offsets") {
      state_ = State::offsets;
      return true;
    }
    return scalar("an array");
  }

  // ---- structure events
  bool key(json::string_t& k) {
    switch (state_) {
      case State::root:
        if (!top_keys_.insert(k).second)
          return fail(k == "__metadata__" ? "duplicate key '__metadata__' in the header"
                                          : "duplicate tensor name " + quote_name(k) + " in the header");
        if (k.empty()) return fail("empty tensor name in the header");
        break;
      case State::metadata:
        if (metadata.count(k)) return fail("duplicate metadata key " + quote_name(k) + " in __metadata__");
        break;
      case State::tensor:
        if (k == "dtype" || k == "shape" || k == "data_offsets") {
          bool& seen = k == "dtype" ? current_.has_dtype : k == "shape" ? current_.has_shape : current_.has_offsets;
          if (seen) return fail("tensor " + quote_name(current_.name) + ": duplicate field '" + k + "'");
          seen = true;
        } else {
          return fail("tensor " + quote_name(current_.name) + ": unknown field " + quote_name(k) +
                      " (expected dtype, shape, data_offsets)");
        }
        break;
      default: return fail("unexpected key " + quote_name(k));
    }
    key_ = std::move(k);
    return true;
  }
  bool end_object() {
    switch (state_) {
      case State::root: state_ = State::done; return true;
      case State::metadata: state_ = State::root; return true;
      case State::tensor: {
        const char* missing = !current_.has_dtype ? "dtype" : !current_.has_shape ? "shape"
                              : !current_.has_offsets ? "data_offsets" : nullptr;
        if (missing) return fail("tensor " + quote_name(current_.name) + ": missing field '" + missing + "'");
        tensors.push_back(std::move(current_));
        state_ = State::root;
        return true;
      }
      default: return fail("unbalanced JSON object");
    }
  }
  bool end_array() {
    if (state_ == State::shape) {
      if (current_.rank > uint64_t(kMaxRank))
        return fail("tensor " + quote_name(current_.name) + ": rank " + std::to_string(current_.rank) +
                    " exceeds reel's limit of " + std::to_string(kMaxRank) + " dimensions");
    } else if (state_ == State::offsets) {
      if (current_.offsets_count != 2)
        return fail("tensor " + quote_name(current_.name) + ": data_offsets holds " +
                    std::to_string(current_.offsets_count) + " values, expected 2 [begin, end]");
    } else {
      return fail("unbalanced JSON array");
    }
    state_ = State::tensor;
    return true;
  }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& ex) {
    // ex.what() is "[json.exception.parse_error.101] parse error at line 1, column 9: <cause>".
    std::string what = ex.what();
    const size_t colon = what.find(": ");
    const std::string cause = colon == std::string::npos ? what : what.substr(colon + 2);
    return fail("header is not valid JSON (at byte " + std::to_string(position) + "): " + cause.substr(0, 300));
  }

 private:
  enum class State { start, root, metadata, tensor, shape, offsets, done };
  State state_ = State::start;
  std::string key_;
  RawTensor current_;
  std::unordered_set<std::string> top_keys_;

  bool fail(std::string message) {
    if (error.empty()) error = std::move(message);
    return false;
  }
  bool in_array_of_uints() const { return state_ == State::shape || state_ == State::offsets; }
  std::string field_prefix() const {
    return "tensor " + quote_name(current_.name) + ": " + (state_ == State::shape ? "shape" : "data_offsets") + " ";
  }
  bool number(uint64_t v) {
    if (state_ == State::shape) {
      if (current_.rank < uint64_t(kMaxRank)) current_.dims.push_back(v);
      ++current_.rank;  // counted, not stored: a hostile header cannot make us allocate
      return true;
    }
    if (state_ == State::offsets) {
      if (current_.offsets_count >= 2)
        return fail("tensor " + quote_name(current_.name) + ": data_offsets holds more than 2 values, expected [begin, end]");
      current_.offsets[current_.offsets_count++] = v;
      return true;
    }
    return scalar("a number");
  }
  // A value of the wrong JSON type for where it appears.
  bool scalar(const char* what) {
    switch (state_) {
      case State::start: return fail(std::string("header is ") + what + ", not a JSON object");
      case State::root:
        if (key_ == "__metadata__") return fail(std::string("__metadata__ is ") + what + ", expected an object of strings");
        return fail("tensor " + quote_name(key_) + ": entry is " + what + ", expected an object");
      case State::metadata:
        return fail("__metadata__ value for key " + quote_name(key_) + " is " + what + ", expected a string");
      case State::tensor:
        return fail("tensor " + quote_name(current_.name) + ": field '" + key_ + "' is " + what + ", expected " +
                    (key_ == "dtype" ? "a string" : "an array of integers"));
      case State::shape:
      case State::offsets: return fail(field_prefix() + "holds " + what + ", expected integers");
      case State::done: return fail("unexpected data after the header object");
    }
    return fail("unexpected JSON value");
  }
};

bool mul_overflows(uint64_t a, uint64_t b, uint64_t* out) { return __builtin_mul_overflow(a, b, out); }

std::string range_str(uint64_t b, uint64_t e) { return "[" + std::to_string(b) + ", " + std::to_string(e) + "]"; }

std::string dims_str(const RawTensor& t) {
  std::string s = "[";
  for (size_t i = 0; i < t.dims.size(); ++i) s += (i ? ", " : "") + std::to_string(t.dims[i]);
  return s + "]";
}

}  // namespace

SafetensorsLayout parse_safetensors(std::span<const std::byte> file, const std::string& label) {
  auto bad = [&](const std::string& message) { return Error(StatusCode::bad_format, label + ": " + message); };

  const uint64_t file_size = file.size();
  if (file_size == 0) throw bad("file is empty (0 bytes), not a safetensors file");
  if (file_size < 8)
    throw bad("file is " + std::to_string(file_size) +
              " bytes, too short for a safetensors file (it starts with an 8-byte header length)");

  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | uint64_t(std::to_integer<uint8_t>(file[size_t(i)]));
  if (n > kMaxSafetensorsHeader)
    throw bad("header length field claims " + std::to_string(n) + " bytes, more than the limit of " +
              std::to_string(kMaxSafetensorsHeader) + " (not a safetensors file, or a corrupt one)");
  if (n > file_size - 8)  // file_size >= 8 here, so no wrap-around
    throw bad("header length " + std::to_string(n) + " runs past the end of the file (" + std::to_string(file_size) +
              " bytes)");

  const std::string_view header(reinterpret_cast<const char*>(file.data()) + 8, size_t(n));
  if (auto at = find_invalid_utf8(header)) throw bad("header is not valid UTF-8 (at byte " + std::to_string(*at) + ")");

  HeaderSax sax;
  bool ok = false;
  try {
    ok = json::sax_parse(header.data(), header.data() + header.size(), &sax, nlohmann::json::input_format_t::json,
                         /*strict=*/true, /*ignore_comments=*/false);
  } catch (const nlohmann::json::exception& ex) {
    throw bad(std::string("header is not valid JSON: ") + ex.what());
  }
  if (!ok || !sax.error.empty()) throw bad(sax.error.empty() ? "header is not valid JSON" : sax.error);

  SafetensorsLayout layout;
  layout.header_bytes = n;
  layout.data_start = 8 + n;
  layout.metadata = std::move(sax.metadata);
  const uint64_t data_size = file_size - layout.data_start;

  layout.tensors.reserve(sax.tensors.size());
  for (RawTensor& raw : sax.tensors) {
    const std::string who = "tensor " + quote_name(raw.name) + ": ";
    const auto dtype = parse_file_dtype(raw.dtype);
    if (!dtype)
      throw bad(who + "dtype " + quote_name(raw.dtype) +
                " is not supported (reel reads F32, F16, BF16, F8_E4M3 and F8_E5M2 weights)");
    uint64_t count = 1;
    for (uint64_t d : raw.dims) {
      // Shape caps dimensions and element counts at 2^62; anything larger cannot be a real tensor.
      if (d > (uint64_t(1) << 62) || mul_overflows(count, d, &count) || count > (uint64_t(1) << 62))
        throw bad(who + "shape " + dims_str(raw) + " has too many elements (the element count overflows)");
    }
    uint64_t bytes = 0;
    if (mul_overflows(count, file_dtype_size(*dtype), &bytes))
      throw bad(who + "shape " + dims_str(raw) + " is too large (the byte size overflows)");
    const uint64_t b = raw.offsets[0], e = raw.offsets[1];
    if (b > e) throw bad(who + "data_offsets " + range_str(b, e) + " has begin > end");
    if (e - b != bytes)
      throw bad(who + "data_offsets " + range_str(b, e) + " hold " + std::to_string(e - b) + " bytes but shape " +
                dims_str(raw) + " of " + raw.dtype + " needs " + std::to_string(bytes));
    if (e > data_size)
      throw bad(who + "data_offsets " + range_str(b, e) + " run past the end of the file (the data section holds " +
                std::to_string(data_size) + " bytes)");
    std::vector<int64_t> dims(raw.dims.begin(), raw.dims.end());  // each <= 2^62 after the count check
    layout.tensors.push_back({std::move(raw.name), *dtype, Shape(std::span<const int64_t>(dims)), b, e});
  }

  // The ranges must tile [0, data_size) exactly: no gap, no overlap, no trailing bytes.
  std::sort(layout.tensors.begin(), layout.tensors.end(), [](const SafetensorsTensor& x, const SafetensorsTensor& y) {
    return x.begin != y.begin ? x.begin < y.begin : x.end < y.end;
  });
  uint64_t expected = 0;
  const SafetensorsTensor* prev = nullptr;
  for (const SafetensorsTensor& t : layout.tensors) {
    if (t.begin < expected)
      throw bad("tensor " + quote_name(t.name) + ": data_offsets " + range_str(t.begin, t.end) + " overlap tensor " +
                quote_name(prev->name) + " " + range_str(prev->begin, prev->end));
    if (t.begin > expected)
      throw bad(std::to_string(t.begin - expected) + " unused bytes (a gap) before tensor " + quote_name(t.name) +
                " at data_offsets " + range_str(t.begin, t.end));
    expected = t.end;
    prev = &t;
  }
  if (expected != data_size)
    throw bad(std::to_string(data_size - expected) + " trailing bytes after the last tensor (the data section holds " +
              std::to_string(data_size) + " bytes, the tensors end at " + std::to_string(expected) + ")");
  return layout;
}

}  // namespace detail
}  // namespace reel
