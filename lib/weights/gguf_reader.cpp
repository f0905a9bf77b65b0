// GGUF parsing: a bounds-checked cursor over the mapped bytes, the metadata key-values (kept as
// text), the tensor infos and the data-section range checks. All size arithmetic is checked.
#include "weights/gguf_reader.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <optional>
#include <set>

#include "reel/status.hpp"
#include "weights/gguf_dequant.hpp"
#include "weights/safetensors_header.hpp"

namespace reel::detail {

namespace {

constexpr uint64_t kMaxElements = uint64_t(1) << 62;  // reel::Shape's element-count limit
constexpr uint32_t kMaxDims = 4;                       // GGML_MAX_DIMS

enum class ValueType : uint32_t {
  u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, boolean = 7,
  string = 8, array = 9, u64 = 10, i64 = 11, f64 = 12,
};

const char* value_type_name(uint32_t t) {
  static const char* const names[] = {"UINT8", "INT8",   "UINT16", "INT16", "UINT32", "INT32",  "FLOAT32",
                                      "BOOL",  "STRING", "ARRAY",  "UINT64", "INT64", "FLOAT64"};
  return t < 13 ? names[t] : "?";
}

// Fixed size of a scalar value type; 0 for string/array; nullopt when unknown.
std::optional<uint64_t> scalar_size(uint32_t t) {
  switch (ValueType(t)) {
    case ValueType::u8: case ValueType::i8: case ValueType::boolean: return 1;
    case ValueType::u16: case ValueType::i16: return 2;
    case ValueType::u32: case ValueType::i32: case ValueType::f32: return 4;
    case ValueType::u64: case ValueType::i64: case ValueType::f64: return 8;
    case ValueType::string: case ValueType::array: return 0;
  }
  return std::nullopt;
}

// ggml type ids (ggml.h enum ggml_type); the ones reel dequantises map to a FileDType.
std::optional<FileDType> ggml_type(uint32_t id) {
  switch (id) {
    case 0: return FileDType::f32;
    case 1: return FileDType::f16;
    case 2: return FileDType::q4_0;
    case 3: return FileDType::q4_1;
    case 6: return FileDType::q5_0;
    case 7: return FileDType::q5_1;
    case 8: return FileDType::q8_0;
    case 10: return FileDType::q2_k;
    case 11: return FileDType::q3_k;
    case 12: return FileDType::q4_k;
    case 13: return FileDType::q5_k;
    case 14: return FileDType::q6_k;
    case 30: return FileDType::bf16;
    default: return std::nullopt;
  }
}

std::string ggml_type_name(uint32_t id) {
  static const char* const names[] = {"F32",    "F16",   "Q4_0",   "Q4_1",  "Q4_2 (removed)", "Q4_3 (removed)",
                                      "Q5_0",   "Q5_1",  "Q8_0",   "Q8_1",  "Q2_K",  "Q3_K",  "Q4_K",
                                      "Q5_K",   "Q6_K",  "Q8_K",   "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S",
                                      "IQ4_NL", "IQ3_S", "IQ2_S",  "IQ4_XS", "I8",    "I16",   "I32",
                                      "I64",    "F64",   "IQ1_M",  "BF16",  "Q4_0_4_4 (removed)",
                                      "Q4_0_4_8 (removed)", "Q4_0_8_8 (removed)", "TQ1_0", "TQ2_0",
                                      "IQ4_NL_4_4 (removed)", "IQ4_NL_4_8 (removed)", "IQ4_NL_8_8 (removed)",
                                      "MXFP4", "NVFP4", "Q1_0"};
  const std::string n = id < std::size(names) ? names[id] : "unknown";
  return n + " (ggml type " + std::to_string(id) + ")";
}

bool mul_overflows(uint64_t a, uint64_t b, uint64_t* out) { return __builtin_mul_overflow(a, b, out); }
bool add_overflows(uint64_t a, uint64_t b, uint64_t* out) { return __builtin_add_overflow(a, b, out); }

// Reads little-endian values and strings, never past the end; every failure names the offset.
class Cursor {
 public:
  Cursor(std::span<const std::byte> file, const std::string& label) : file_(file), label_(label) {}

  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return file_.size() - pos_; }

  [[noreturn]] void fail(const std::string& what) const {
    throw Error(StatusCode::bad_format, label_ + ": GGUF " + what + " (at byte " + std::to_string(pos_) + " of " +
                                            std::to_string(file_.size()) + ")");
  }

  void need(uint64_t n, const char* what) const {
    if (n > remaining())
      fail(std::string("file ends inside ") + what + ": needs " + std::to_string(n) + " bytes, " +
           std::to_string(remaining()) + " left");
  }

  template <class T>
  T read(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, file_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  void skip(uint64_t n, const char* what) {
    need(n, what);
    pos_ += n;
  }

  std::string_view string(const char* what) {
    const uint64_t n = read<uint64_t>(what);
    need(n, what);
    const std::string_view s(reinterpret_cast<const char*>(file_.data() + pos_), size_t(n));
    pos_ += n;
    return s;
  }

 private:
  std::span<const std::byte> file_;
  const std::string& label_;
  uint64_t pos_ = 0;
};

template <class T>
std::string number_text(Cursor& c, const char* what) {
  const T v = c.read<T>(what);
  if constexpr (std::is_floating_point_v<T>) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.9g", double(v));
    return buf;
  } else {
    return std::to_string(v);
  }
}

// One scalar as text (the cursor moves past it).
std::string scalar_text(Cursor& c, uint32_t type) {
  switch (ValueType(type)) {
    case ValueType::u8: return number_text<uint8_t>(c, "a value");
    case ValueType::i8: return number_text<int8_t>(c, "a value");
    case ValueType::u16: return number_text<uint16_t>(c, "a value");
    case ValueType::i16: return number_text<int16_t>(c, "a value");
    case ValueType::u32: return number_text<uint32_t>(c, "a value");
    case ValueType::i32: return number_text<int32_t>(c, "a value");
    case ValueType::f32: return number_text<float>(c, "a value");
    case ValueType::u64: return number_text<uint64_t>(c, "a value");
    case ValueType::i64: return number_text<int64_t>(c, "a value");
    case ValueType::f64: return number_text<double>(c, "a value");
    case ValueType::boolean: {
      const uint8_t b = c.read<uint8_t>("a value");
      if (b > 1) c.fail("BOOL value " + std::to_string(b) + " is neither 0 nor 1");
      return b ? "true" : "false";
    }
    case ValueType::string: return std::string(c.string("a string value"));
    case ValueType::array: break;
  }
  c.fail("value type " + std::to_string(type) + " is unknown");
}

// A metadata value as text; integer arrays are also returned as numbers (for orig_shape).
struct Value {
  std::string text;
  std::optional<std::vector<int64_t>> integers;
};

Value read_value(Cursor& c, uint32_t type, const std::string& key) {
  if (ValueType(type) != ValueType::array) {
    if (!scalar_size(type)) c.fail("key " + quote_name(key) + ": value type " + std::to_string(type) + " is unknown");
    return {scalar_text(c, type), std::nullopt};
  }
  const uint32_t elem = c.read<uint32_t>("an array's element type");
  const std::optional<uint64_t> size = scalar_size(elem);
  if (!size) c.fail("key " + quote_name(key) + ": array element type " + std::to_string(elem) + " is unknown");
  if (ValueType(elem) == ValueType::array) c.fail("key " + quote_name(key) + ": nested arrays are not allowed");
  const uint64_t count = c.read<uint64_t>("an array's length");
  const uint64_t min_each = *size ? *size : 8;  // a string needs at least its 8-byte length
  if (count > c.remaining() / min_each)
    c.fail("key " + quote_name(key) + ": array of " + std::to_string(count) + " " + value_type_name(elem) +
           " values is larger than the rest of the file");
  Value v;
  const bool integer = *size && elem != uint32_t(ValueType::f32) && elem != uint32_t(ValueType::f64) &&
                       elem != uint32_t(ValueType::boolean);
  if (ValueType(elem) == ValueType::string) {
    for (uint64_t i = 0; i < count; ++i) c.string("an array's string");
  } else if (count <= 16) {
    std::vector<int64_t> ints;
    v.text = "[";
    for (uint64_t i = 0; i < count; ++i) {
      const std::string t = scalar_text(c, elem);
      v.text += (i ? ", " : "") + t;
      if (integer) ints.push_back(t[0] == '-' ? std::stoll(t) : int64_t(std::min<unsigned long long>(std::stoull(t), INT64_MAX)));
    }
    v.text += "]";
    if (integer) v.integers = std::move(ints);
    return v;
  } else {
    c.skip(count * *size, "an array");
  }
  char summary[64];  // snprintf: GCC 12 warns (-Wrestrict, a false positive) on the string concatenation
  std::snprintf(summary, sizeof summary, "[%llu values of %s]", static_cast<unsigned long long>(count),
                value_type_name(elem));
  v.text = summary;
  return v;
}

// ComfyUI-GGUF stores the real shape of tensors it reshaped (rank 5, or flattened for the
// K-quants) as comfy.gguf.orig_shape.<name>: an integer array in PyTorch order.
Shape shape_of(const std::string& name, const std::vector<uint64_t>& ne, uint64_t numel,
               const std::map<std::string, std::vector<int64_t>>& orig_shapes, const std::string& label) {
  if (const auto it = orig_shapes.find("comfy.gguf.orig_shape." + name); it != orig_shapes.end()) {
    const std::vector<int64_t>& dims = it->second;
    uint64_t product = 1, nonzero = 1;
    bool ok = !dims.empty() && dims.size() <= size_t(kMaxRank);
    for (size_t i = 0; ok && i < dims.size(); ++i) {
      ok = dims[i] >= 0 && (dims[i] == 0 || (!mul_overflows(nonzero, uint64_t(dims[i]), &nonzero) && nonzero <= kMaxElements));
      product = dims[i] == 0 ? 0 : product * uint64_t(dims[i]);
    }
    if (!ok || product != numel) {
      std::string s = "[";
      for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
      throw Error(StatusCode::bad_format, label + ": GGUF tensor " + quote_name(name) + ": comfy.gguf.orig_shape " +
                                              s + "] does not fit its " + std::to_string(numel) + " elements");
    }
    return Shape(std::span<const int64_t>(dims));
  }
  std::vector<int64_t> dims(ne.rbegin(), ne.rend());
  return Shape(std::span<const int64_t>(dims));
}

}  // namespace

bool has_gguf_magic(std::span<const std::byte> file) {
  return file.size() >= 4 && std::memcmp(file.data(), "GGUF", 4) == 0;
}

GgufLayout parse_gguf(std::span<const std::byte> file, const std::string& label) {
  Cursor c(file, label);
  if (!has_gguf_magic(file)) c.fail("magic missing: the file does not start with \"GGUF\"");
  c.skip(4, "the magic");
  GgufLayout out;
  out.version = c.read<uint32_t>("the header (version)");
  if (out.version != 2 && out.version != 3) {
    const std::string why = out.version == 1 ? " (the 2023 draft; convert it with llama.cpp's tools)"
                            : out.version > 0xffff ? " (a big-endian file?)" : "";
    throw Error(StatusCode::unsupported, label + ": GGUF version " + std::to_string(out.version) + why +
                                             ": reel reads versions 2 and 3");
  }
  const uint64_t tensor_count = c.read<uint64_t>("the header (tensor count)");
  const uint64_t kv_count = c.read<uint64_t>("the header (key-value count)");
  // Each key-value takes at least 13 bytes (key length, type, one byte of value); each tensor
  // info at least 32 (name length, n_dims, one ne, type, offset).
  if (kv_count > c.remaining() / 13)
    c.fail("header claims " + std::to_string(kv_count) + " key-value pairs, more than the file can hold");
  if (tensor_count > c.remaining() / 32)
    c.fail("header claims " + std::to_string(tensor_count) + " tensors, more than the file can hold");

  std::map<std::string, std::vector<int64_t>> orig_shapes;
  for (uint64_t i = 0; i < kv_count; ++i) {
    const std::string key(c.string("a metadata key"));
    if (find_invalid_utf8(key)) c.fail("metadata key " + quote_name(key) + " is not valid UTF-8");
    if (out.metadata.count(key)) c.fail("metadata key " + quote_name(key) + " appears twice");
    const uint32_t type = c.read<uint32_t>("a metadata value type");
    if (key == "general.alignment") {
      if (type != uint32_t(ValueType::u32))
        c.fail(std::string("general.alignment has type ") + value_type_name(type) + ", expected UINT32");
      const uint32_t a = c.read<uint32_t>("general.alignment");
      if (a == 0 || (a & (a - 1)) != 0) c.fail("general.alignment " + std::to_string(a) + " is not a power of two");
      out.alignment = a;
      out.metadata.emplace(key, std::to_string(a));
      continue;
    }
    Value v = read_value(c, type, key);
    if (v.integers && key.starts_with("comfy.gguf.orig_shape.")) orig_shapes.emplace(key, std::move(*v.integers));
    out.metadata.emplace(key, std::move(v.text));
  }

  std::set<std::string, std::less<>> names;
  out.tensors.reserve(size_t(tensor_count));
  for (uint64_t i = 0; i < tensor_count; ++i) {
    std::string name(c.string("a tensor name"));
    if (find_invalid_utf8(name)) c.fail("tensor name " + quote_name(name) + " is not valid UTF-8");
    if (!names.insert(name).second) c.fail("tensor " + quote_name(name) + " appears twice");
    const uint32_t n_dims = c.read<uint32_t>("a tensor's dimension count");
    if (n_dims == 0 || n_dims > kMaxDims)
      c.fail("tensor " + quote_name(name) + " has " + std::to_string(n_dims) + " dimensions (1 to 4 allowed)");
    std::vector<uint64_t> ne(n_dims);
    // The product of the non-zero dimensions must fit (as reel::Shape requires of every prefix,
    // even when a later dimension is 0).
    uint64_t numel = 1, nonzero = 1;
    bool too_big = false;
    for (uint32_t d = 0; d < n_dims; ++d) {
      ne[d] = c.read<uint64_t>("a tensor's dimensions");
      too_big = too_big || (ne[d] && (mul_overflows(nonzero, ne[d], &nonzero) || nonzero > kMaxElements));
      numel = ne[d] == 0 ? 0 : numel * ne[d];  // ≤ nonzero: no overflow once too_big is false
    }
    if (too_big) c.fail("tensor " + quote_name(name) + ": the product of its dimensions overflows (more than 2^62 elements)");
    const uint32_t type_id = c.read<uint32_t>("a tensor's type");
    const uint64_t rel_offset = c.read<uint64_t>("a tensor's offset");
    const std::optional<FileDType> dtype = ggml_type(type_id);
    if (!dtype)
      throw Error(StatusCode::unsupported, label + ": GGUF tensor " + quote_name(name) + " has type " +
                                               ggml_type_name(type_id) +
                                               ", which reel cannot dequantise (supported: F32, F16, BF16, Q8_0, "
                                               "Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K)");
    const GgufBlock blk = gguf_block(*dtype);
    if (ne[0] % blk.elements != 0)
      c.fail("tensor " + quote_name(name) + ": row length ne[0] = " + std::to_string(ne[0]) + " is not a multiple of " +
             std::string(file_dtype_name(*dtype)) + "'s block of " + std::to_string(blk.elements));
    uint64_t bytes = 0;
    if (mul_overflows(numel / blk.elements, blk.bytes, &bytes))
      c.fail("tensor " + quote_name(name) + ": byte size overflows");
    if (rel_offset % out.alignment != 0)
      c.fail("tensor " + quote_name(name) + ": offset " + std::to_string(rel_offset) + " is not a multiple of the alignment " +
             std::to_string(out.alignment));
    GgufTensor t{std::move(name), *dtype, Shape(), rel_offset, bytes};
    t.shape = shape_of(t.name, ne, numel, orig_shapes, label);
    out.tensors.push_back(std::move(t));
  }

  // The data section starts at the next multiple of the alignment.
  const uint64_t pad = (out.alignment - c.pos() % out.alignment) % out.alignment;
  out.data_start = c.pos() + pad;
  if (out.data_start > file.size() && out.tensors.empty()) out.data_start = file.size();  // nothing to pad for
  if (out.data_start > file.size())
    c.fail("file ends before the data section (padding to " + std::to_string(out.alignment) + " bytes)");
  const uint64_t data_size = file.size() - out.data_start;
  for (GgufTensor& t : out.tensors) {
    uint64_t end = 0;
    if (add_overflows(t.offset, t.bytes, &end) || end > data_size)
      throw Error(StatusCode::bad_format, label + ": GGUF tensor " + quote_name(t.name) + ": bytes [" +
                                              std::to_string(t.offset) + ", " + std::to_string(t.offset) + " + " +
                                              std::to_string(t.bytes) + ") of the data section run past its end (" +
                                              std::to_string(data_size) + " bytes)");
    t.offset += out.data_start;
  }
  std::vector<const GgufTensor*> by_offset;
  by_offset.reserve(out.tensors.size());
  for (const GgufTensor& t : out.tensors)
    if (t.bytes) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i)
    if (by_offset[i - 1]->offset + by_offset[i - 1]->bytes > by_offset[i]->offset)
      throw Error(StatusCode::bad_format, label + ": GGUF tensors " + quote_name(by_offset[i - 1]->name) + " and " +
                                              quote_name(by_offset[i]->name) + " overlap in the data section");
  return out;
}

}  // namespace reel::detail
