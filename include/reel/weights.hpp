// Model weights from safetensors files: one file, a sharded set (*.safetensors.index.json),
// or a folder holding either (a diffusers component folder such as transformer/); or one GGUF
// file (v2/v3, recognised by its "GGUF" magic: F32/F16/BF16 and the ggml quantisations listed
// below, dequantised by load()).
//
// Files are memory-mapped read-only and fully validated (../shared/reference/formats.md)
// before any pointer is exposed; every error names the file and the tensor.
//
//   auto store = reel::WeightStore::open("Wan2.1-T2V-1.3B-Diffusers/transformer");
//   const reel::TensorInfo& info = store.info("patch_embedding.weight");   // dtype, shape, file
//   reel::Tensor w = store.load("patch_embedding.weight", reel::DType::bf16);  // converted copy
//   reel::Tensor v = store.view("proj_out.bias");  // zero-copy, read-only (F32/BF16/F16 only)
#pragma once
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "reel/export.hpp"
#include "reel/tensor.hpp"

namespace reel {

// Element types a checkpoint may store (safetensors / ggml names in comments).
enum class FileDType : uint8_t {
  f32,      // F32
  f16,      // F16
  bf16,     // BF16
  f8_e4m3,  // F8_E4M3 (e4m3fn: no infinities, 0x7f/0xff are NaN)
  f8_e5m2,  // F8_E5M2
  // GGUF only: ggml block quantisations (blocks of 32 or, for the K types, 256 elements along
  // the fastest-varying dimension). load() dequantises them; view() refuses them.
  q4_0, q4_1, q5_0, q5_1, q8_0,  // Q4_0 Q4_1 Q5_0 Q5_1 Q8_0
  q2_k, q3_k, q4_k, q5_k, q6_k,  // Q2_K Q3_K Q4_K Q5_K Q6_K
};
REEL_API std::string_view file_dtype_name(FileDType t);

struct TensorInfo {
  std::string name;
  FileDType dtype;
  Shape shape;
  std::filesystem::path file;
  uint64_t offset = 0;  // of the first byte, from the start of the file
  uint64_t bytes = 0;  // quantised types: whole blocks
};

// Thread safety: immutable after open(); any number of threads may call the const members of
// one WeightStore (or of copies, which share the mapped files) at the same time.
class REEL_API WeightStore {
 public:
  // Throws not_found (no such file / no safetensors in the folder), io_error, bad_format
  // (anything malformed), or unsupported (pickle .pth/.ckpt/.bin: names the safetensors to use).
  static WeightStore open(const std::filesystem::path& path);

  bool contains(std::string_view name) const;
  // Throws not_found naming the tensor and the file(s) searched.
  const TensorInfo& info(std::string_view name) const;
  std::vector<std::string> names() const;  // sorted
  size_t size() const;

  // A CPU copy converted to `dtype` (fp8 and every float type convert to f32/bf16/f16). The
  // tensor's mapped pages then leave the resident set (release()), so a model being loaded is
  // not resident twice.
  Tensor load(std::string_view name, DType dtype) const;
  // A model weight as loaders take it: dequantised by its ComfyUI "scaled fp8" scale when the
  // file has one (scale_of), w·scale in f32 and then converted to `dtype`; else a zero-copy
  // view when `map` and the file holds `dtype`, else load(). unsupported when the scale is not
  // one value or one per row (dim 0) of the weight; bad_format when it is not finite.
  Tensor load_weight(std::string_view name, DType dtype, bool map = false) const;
  // The scale tensor of `<layer>.weight` in a ComfyUI scaled-fp8 file: `<layer>.scale_weight`
  // (older) or `<layer>.weight_scale` (newer); "" when there is none.
  std::string scale_of(std::string_view name) const;
  // Zero-copy read-only view into the mapped file; the file dtype must be F32, BF16 or F16
  // (F8 throws unsupported: use load). The view keeps the mapping alive. When the tensor's data
  // offset is not a multiple of its element size (legal in safetensors, never produced by
  // save_safetensors or the reference writer), the view is a read-only aligned copy instead.
  Tensor view(std::string_view name) const;

  // The tensor's bytes as stored (any dtype, GGUF quantisation blocks included), zero-copy from
  // the mapped file: valid while this store or a copy of it lives. TensorInfo::bytes long.
  std::span<const std::byte> bytes(std::string_view name) const;
  // Drops the tensor's mapped pages from the process's resident memory after the caller copied
  // what it needs from bytes() (load() does this itself): they are read again from the file if
  // touched. Views and bytes() stay valid.
  void release(std::string_view name) const;

  // __metadata__ of the (first) file. GGUF: every key-value pair, numbers and strings as text,
  // arrays of up to 16 numbers as "[a, b, ...]", longer arrays as "[N values of TYPE]".
  const std::map<std::string, std::string>& metadata() const;
  std::vector<std::filesystem::path> files() const;

 private:
  struct Impl;
  std::shared_ptr<const Impl> impl_;
};

// Writes a valid safetensors file (tensors in the given order, CPU tensors of any reel float
// dtype). Written to a temporary name and renamed, so no half-written file is left behind.
REEL_API void save_safetensors(const std::filesystem::path& path,
                               const std::vector<std::pair<std::string, Tensor>>& tensors,
                               const std::map<std::string, std::string>& metadata = {});

}  // namespace reel
