// WeightStore: opens the file(s) find_weight_files names, validates each one completely, checks
// the shards against their index, then serves tensor infos, converted copies and zero-copy views.
#include <bit>
#include <cmath>
#include <cstring>
#include <optional>

#include "parallel.hpp"
#include "reel/weights.hpp"
#include "weights/fp8.hpp"
#include "weights/gguf_dequant.hpp"
#include "weights/gguf_reader.hpp"
#include "weights/mapped_file.hpp"
#include "weights/safetensors_header.hpp"
#include "weights/weight_files.hpp"

namespace reel {

// safetensors stores little-endian data; the mapped bytes are used as they are.
static_assert(std::endian::native == std::endian::little, "reel reads safetensors on little-endian hosts only");

// Immutable after open(): every const member function only reads, so a WeightStore (and copies
// of it, which share the Impl) may be used from many threads at once.
struct WeightStore::Impl {
  struct Entry {
    TensorInfo info;
    std::shared_ptr<const detail::MappedFile> file;
  };
  std::string source;  // the file or index opened, for messages
  std::map<std::string, Entry, std::less<>> tensors;
  std::vector<std::shared_ptr<const detail::MappedFile>> files;
  std::map<std::string, std::string> metadata;

  const Entry& entry(std::string_view name) const {
    const auto it = tensors.find(name);
    if (it == tensors.end())
      throw Error(StatusCode::not_found, source + ": no tensor " + detail::quote_name(name) + " (" +
                                             std::to_string(tensors.size()) + " tensors in " +
                                             std::to_string(files.size()) + " file(s))");
    return it->second;
  }
};

namespace {

namespace fs = std::filesystem;
using detail::quote_name;

std::optional<DType> float_dtype(FileDType t) {
  switch (t) {
    case FileDType::f32: return DType::f32;
    case FileDType::bf16: return DType::bf16;
    case FileDType::f16: return DType::f16;
    default: return std::nullopt;
  }
}

std::string first_tensor_in(const detail::WeightFiles& wf, const std::string& shard) {
  for (const auto& [tensor, s] : wf.shard_of)
    if (s == shard) return tensor;
  return "?";
}

// The shards must hold exactly what the index claims: each tensor once, in the claimed shard.
// (A template only because WeightStore::Impl is a private name.)
template <class Impl>
void check_against_index(const detail::WeightFiles& wf, const std::string& shard, const std::string& tensor,
                         const Impl& impl) {
  const std::string label = wf.index.string();
  if (const auto seen = impl.tensors.find(tensor); seen != impl.tensors.end())
    throw Error(StatusCode::bad_format, label + ": tensor " + quote_name(tensor) + " is in two shards, " +
                                            quote_name(seen->second.info.file.filename().string()) + " and " +
                                            quote_name(shard));
  const auto claim = wf.shard_of.find(tensor);
  if (claim == wf.shard_of.end())
    throw Error(StatusCode::bad_format,
                label + ": shard " + quote_name(shard) + " holds tensor " + quote_name(tensor) + ", which the index does not list");
  if (claim->second != shard)
    throw Error(StatusCode::bad_format, label + ": tensor " + quote_name(tensor) + " is in shard " + quote_name(shard) +
                                            " but the index says it is in " + quote_name(claim->second));
}

// A default-constructed or moved-from WeightStore has no Impl: say so instead of crashing.
template <class Impl>
const Impl& checked(const std::shared_ptr<const Impl>& impl) {
  if (!impl) throw Error(StatusCode::invalid_argument, "WeightStore is empty (default-constructed or moved-from)");
  return *impl;
}

}  // namespace

WeightStore WeightStore::open(const fs::path& path) {
  const detail::WeightFiles wf = detail::find_weight_files(path);
  const bool sharded = !wf.index.empty();
  auto impl = std::make_shared<Impl>();
  impl->source = sharded ? wf.index.string() : wf.files.front().string();

  for (size_t i = 0; i < wf.files.size(); ++i) {
    const fs::path& file = wf.files[i];
    const std::string shard = file.filename().string();
    std::shared_ptr<const detail::MappedFile> mapped;
    try {
      mapped = detail::MappedFile::open(file);
    } catch (const Error& e) {
      if (!sharded || e.code() != StatusCode::not_found) throw;
      throw Error(StatusCode::not_found, wf.index.string() + ": shard " + quote_name(shard) + " (listed for tensor " +
                                             quote_name(first_tensor_in(wf, shard)) + ") does not exist: " + file.string());
    }
    if (!sharded && detail::has_gguf_magic(mapped->bytes())) {  // GGUF: one file, recognised by its magic
      detail::GgufLayout g = detail::parse_gguf(mapped->bytes(), file.string());
      impl->metadata = std::move(g.metadata);
      for (detail::GgufTensor& t : g.tensors) {
        TensorInfo info{t.name, t.dtype, t.shape, file, t.offset, t.bytes};
        impl->tensors.emplace(std::move(t.name), Impl::Entry{std::move(info), mapped});
      }
      impl->files.push_back(std::move(mapped));
      continue;
    }
    if (file.extension() == ".gguf")
      throw Error(StatusCode::bad_format, file.string() + ": named .gguf but does not start with the GGUF magic");
    detail::SafetensorsLayout layout = detail::parse_safetensors(mapped->bytes(), file.string());
    if (i == 0) impl->metadata = std::move(layout.metadata);
    for (detail::SafetensorsTensor& t : layout.tensors) {
      if (sharded) check_against_index(wf, shard, t.name, *impl);
      TensorInfo info{t.name, t.dtype, t.shape, file, layout.data_start + t.begin, t.end - t.begin};
      impl->tensors.emplace(std::move(t.name), Impl::Entry{std::move(info), mapped});
    }
    impl->files.push_back(std::move(mapped));
  }
  if (sharded)
    for (const auto& [tensor, shard] : wf.shard_of)
      if (!impl->tensors.count(tensor))
        throw Error(StatusCode::bad_format, wf.index.string() + ": the index lists tensor " + quote_name(tensor) +
                                                " in shard " + quote_name(shard) + ", which does not hold it");

  WeightStore store;
  store.impl_ = std::move(impl);
  return store;
}

bool WeightStore::contains(std::string_view name) const {
  const Impl& impl = checked(impl_);
  return impl.tensors.find(name) != impl.tensors.end();
}

const TensorInfo& WeightStore::info(std::string_view name) const { return checked(impl_).entry(name).info; }

std::vector<std::string> WeightStore::names() const {
  std::vector<std::string> out;
  const Impl& impl = checked(impl_);
  out.reserve(impl.tensors.size());
  for (const auto& [name, entry] : impl.tensors) out.push_back(name);
  return out;
}

size_t WeightStore::size() const { return checked(impl_).tensors.size(); }

std::string WeightStore::scale_of(std::string_view name) const {
  constexpr std::string_view suffix = ".weight";
  if (!name.ends_with(suffix)) return {};
  const std::string base(name.substr(0, name.size() - suffix.size()));
  for (const char* s : {".scale_weight", ".weight_scale"})
    if (contains(base + s)) return base + s;
  return {};
}

Tensor WeightStore::load_weight(std::string_view name, DType dtype, bool map) const {
  const TensorInfo& wi = info(name);
  const std::string scale_name = scale_of(name);
  if (scale_name.empty()) {
    const bool same = (wi.dtype == FileDType::f32 && dtype == DType::f32) ||
                      (wi.dtype == FileDType::bf16 && dtype == DType::bf16) ||
                      (wi.dtype == FileDType::f16 && dtype == DType::f16);
    return same && map ? view(name) : load(name, dtype);  // a view: no copy, the mapping is shared
  }
  const TensorInfo& si = info(scale_name);
  const int64_t rows = wi.shape.rank() > 0 ? wi.shape[0] : 1;
  const Shape& ss = si.shape;
  const bool per_row = (ss.rank() == 1 && ss[0] == rows) || (ss.rank() == 2 && ss[0] == rows && ss[1] == 1);
  if (ss.numel() != 1 && !per_row)
    throw Error(StatusCode::unsupported, si.file.string() + ": scale tensor " + quote_name(scale_name) + " has shape " +
                                            si.shape.str() + ", expected one value (per tensor) or [" +
                                            std::to_string(rows) + "] (one per row) for " + quote_name(name) + " " +
                                            wi.shape.str());
  const std::vector<float> scale = load(scale_name, DType::f32).to_floats();
  for (float v : scale)
    if (!std::isfinite(v))
      throw Error(StatusCode::bad_format, si.file.string() + ": scale tensor " + quote_name(scale_name) +
                                              " holds a value that is not finite");
  // w·scale in f32 (one rounding, as ComfyUI dequantises), then to `dtype`.
  Tensor w = load(name, DType::f32);
  float* p = w.data<float>();
  const int64_t row_size = w.numel() / std::max<int64_t>(rows, 1);
  parallel_for(rows, 16, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float f = scale[scale.size() == 1 ? 0 : size_t(r)];
      for (int64_t i = 0; i < row_size; ++i) p[r * row_size + i] *= f;
    }
  });
  return dtype == DType::f32 ? w : w.to(dtype);
}

namespace {

// load()'s copy of a tensor whose stored bytes start at src.
Tensor copy_out(const TensorInfo& info, const std::byte* src, DType dtype) {
  if (dtype != DType::f32 && dtype != DType::bf16 && dtype != DType::f16)
    throw Error(StatusCode::unsupported, info.file.string() + ": tensor " + quote_name(info.name) + ": cannot load as " +
                                             std::string(dtype_name(dtype)) + " (weights load as f32, bf16 or f16)");
  const size_t n = size_t(info.shape.numel());
  Tensor out = Tensor::empty(info.shape, dtype);

  if (!float_dtype(info.dtype) && detail::gguf_block(info.dtype).elements) {  // a GGUF quantisation
    if (dtype == DType::f32) {
      detail::dequantize_gguf(info.dtype, src, out.data<float>(), n);
    } else {
      Tensor f = Tensor::empty(info.shape, DType::f32);
      detail::dequantize_gguf(info.dtype, src, f.data<float>(), n);
      convert_elements(f.raw(), DType::f32, out.raw(), dtype, n);
    }
    return out;
  }
  if (info.dtype == FileDType::f8_e4m3 || info.dtype == FileDType::f8_e5m2) {
    detail::convert_fp8(reinterpret_cast<const uint8_t*>(src), info.dtype == FileDType::f8_e5m2, out.raw(), dtype, n);
    return out;
  }
  const DType file_type = *float_dtype(info.dtype);
  if (file_type == dtype) {
    if (info.bytes) std::memcpy(out.raw(), src, size_t(info.bytes));
  } else if (reinterpret_cast<uintptr_t>(src) % dtype_size(file_type) == 0) {
    convert_elements(src, file_type, out.raw(), dtype, n);
  } else {  // misaligned in the file: copy to aligned memory first, then convert
    Tensor aligned = Tensor::empty(info.shape, file_type);
    if (info.bytes) std::memcpy(aligned.raw(), src, size_t(info.bytes));
    convert_elements(aligned.raw(), file_type, out.raw(), dtype, n);
  }
  return out;
}

}  // namespace

Tensor WeightStore::load(std::string_view name, DType dtype) const {
  const Impl::Entry& e = checked(impl_).entry(name);
  Tensor out = copy_out(e.info, e.file->bytes().data() + e.info.offset, dtype);  // in range: checked at open
  e.file->release(e.info.offset, e.info.bytes);  // copied: not resident twice while a model loads
  return out;
}

void WeightStore::release(std::string_view name) const {
  const Impl::Entry& e = checked(impl_).entry(name);
  e.file->release(e.info.offset, e.info.bytes);
}

Tensor WeightStore::view(std::string_view name) const {
  const Impl::Entry& e = checked(impl_).entry(name);
  const TensorInfo& info = e.info;
  const std::optional<DType> type = float_dtype(info.dtype);
  if (!type)
    throw Error(StatusCode::unsupported, info.file.string() + ": tensor " + quote_name(info.name) + " is stored as " +
                                             std::string(file_dtype_name(info.dtype)) +
                                             ": view() needs F32, BF16 or F16; use load(name, dtype) to convert");
  const std::byte* src = e.file->bytes().data() + info.offset;
  if (reinterpret_cast<uintptr_t>(src) % dtype_size(*type) == 0)
    return Tensor::wrap(info.shape, *type, std::shared_ptr<const void>(e.file), src);
  // The data offset is not a multiple of the element size (legal, but typed access would be
  // misaligned): hand out a read-only aligned copy instead.
  auto copy = std::make_shared<Tensor>(Tensor::empty(info.shape, *type));
  if (info.bytes) std::memcpy(copy->raw(), src, size_t(info.bytes));
  const void* data = copy->raw();
  return Tensor::wrap(info.shape, *type, std::shared_ptr<const void>(copy), data);
}

std::span<const std::byte> WeightStore::bytes(std::string_view name) const {
  const Impl::Entry& e = checked(impl_).entry(name);
  return {e.file->bytes().data() + e.info.offset, size_t(e.info.bytes)};  // in range: checked at open
}

const std::map<std::string, std::string>& WeightStore::metadata() const { return checked(impl_).metadata; }

std::vector<fs::path> WeightStore::files() const {
  std::vector<fs::path> out;
  const Impl& impl = checked(impl_);
  out.reserve(impl.files.size());
  for (const auto& f : impl.files) out.push_back(f->path());
  return out;
}

}  // namespace reel
