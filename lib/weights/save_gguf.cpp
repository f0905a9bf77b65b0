// save_gguf: header (magic, version 3, counts), metadata key-values, tensor infos, padding to
// the alignment, then each tensor's bytes padded to the alignment.
#include "weights/save_gguf.hpp"

#include <cstring>
#include <set>

#include "reel/status.hpp"
#include "weights/atomic_file.hpp"
#include "weights/gguf_dequant.hpp"

namespace reel::detail {

namespace {

constexpr uint32_t kAlignment = 32;  // GGUF's default; written as general.alignment too

uint32_t ggml_type_id(FileDType t) {
  switch (t) {
    case FileDType::f32: return 0;
    case FileDType::f16: return 1;
    case FileDType::q4_0: return 2;
    case FileDType::q4_1: return 3;
    case FileDType::q5_0: return 6;
    case FileDType::q5_1: return 7;
    case FileDType::q8_0: return 8;
    case FileDType::q2_k: return 10;
    case FileDType::q3_k: return 11;
    case FileDType::q4_k: return 12;
    case FileDType::q5_k: return 13;
    case FileDType::q6_k: return 14;
    case FileDType::bf16: return 30;
    default: break;
  }
  throw Error(StatusCode::unsupported, "GGUF has no type for " + std::string(file_dtype_name(t)));
}

// Little-endian serialisation into a byte buffer (the header is built in memory first).
struct Out {
  std::vector<unsigned char> b;
  template <class T>
  void put(T v) {
    unsigned char bytes[sizeof(T)];
    std::memcpy(bytes, &v, sizeof(T));
    b.insert(b.end(), bytes, bytes + sizeof(T));
  }
  void str(const std::string& s) {
    put<uint64_t>(s.size());
    b.insert(b.end(), s.begin(), s.end());
  }
};

}  // namespace

void save_gguf(const std::filesystem::path& path, const std::vector<GgufTensor>& tensors,
               const std::vector<std::pair<std::string, std::string>>& metadata) {
  const std::string label = path.string();
  // ne (ggml order) of each tensor, and the orig_shape entries of those over 4 dimensions.
  std::vector<std::vector<uint64_t>> ne(tensors.size());
  std::vector<std::pair<std::string, std::vector<int32_t>>> orig_shapes;
  std::set<std::string> names;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const GgufTensor& t = tensors[i];
    require(names.insert(t.name).second, StatusCode::invalid_argument, label + ": tensor '" + t.name + "' given twice");
    const GgufBlock blk = gguf_block(t.type);
    const auto dims = t.shape.dims();
    const int64_t row = dims.empty() ? 0 : dims.size() <= 4 ? dims.back() : t.shape.numel() / dims[0];
    require(row > 0 && blk.elements > 0 && row % blk.elements == 0, StatusCode::invalid_argument,
            label + ": tensor '" + t.name + "' " + t.shape.str() + ": rows are not whole " +
                std::string(file_dtype_name(t.type)) + " blocks");
    require(uint64_t(t.shape.numel()) / blk.elements * blk.bytes == t.data.size(), StatusCode::invalid_argument,
            label + ": tensor '" + t.name + "': " + std::to_string(t.data.size()) + " bytes for " +
                std::to_string(t.shape.numel()) + " " + std::string(file_dtype_name(t.type)) + " values");
    if (dims.size() <= 4) {
      ne[i].assign(dims.rbegin(), dims.rend());
    } else {  // ComfyUI-GGUF: flat over the trailing dimensions, the real shape in metadata
      ne[i] = {uint64_t(t.shape.numel() / dims[0]), uint64_t(dims[0])};
      orig_shapes.push_back({"comfy.gguf.orig_shape." + t.name, std::vector<int32_t>(dims.begin(), dims.end())});
    }
  }

  Out h;
  h.b.reserve(1 << 16);
  for (char c : {'G', 'G', 'U', 'F'}) h.put<char>(c);
  h.put<uint32_t>(3);
  h.put<uint64_t>(tensors.size());
  h.put<uint64_t>(metadata.size() + orig_shapes.size() + 1);
  h.str("general.alignment");
  h.put<uint32_t>(4);  // UINT32
  h.put<uint32_t>(kAlignment);
  for (const auto& [key, value] : metadata) {
    h.str(key);
    h.put<uint32_t>(8);  // STRING
    h.str(value);
  }
  for (const auto& [key, dims] : orig_shapes) {
    h.str(key);
    h.put<uint32_t>(9);  // ARRAY
    h.put<uint32_t>(5);  // of INT32
    h.put<uint64_t>(dims.size());
    for (int32_t d : dims) h.put<int32_t>(d);
  }
  uint64_t offset = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    h.str(tensors[i].name);
    h.put<uint32_t>(uint32_t(ne[i].size()));
    for (uint64_t d : ne[i]) h.put<uint64_t>(d);
    h.put<uint32_t>(ggml_type_id(tensors[i].type));
    h.put<uint64_t>(offset);
    offset += (tensors[i].data.size() + kAlignment - 1) / kAlignment * kAlignment;
  }

  AtomicFile file(path);
  file.write(h.b.data(), h.b.size());
  file.pad_to(kAlignment);
  for (const GgufTensor& t : tensors) {
    file.write(t.data.data(), t.data.size());
    file.pad_to(kAlignment);
  }
  file.commit();
}

}  // namespace reel::detail
