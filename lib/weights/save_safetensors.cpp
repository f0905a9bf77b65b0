// save_safetensors: header JSON padded to 8 bytes (so every tensor is aligned for zero-copy
// views), data in the given order, written to a temporary file and renamed into place.
#include <set>

#include <nlohmann/json.hpp>

#include "reel/weights.hpp"
#include "weights/atomic_file.hpp"
#include "weights/safetensors_header.hpp"

namespace reel {
namespace {

namespace fs = std::filesystem;

const char* safetensors_dtype(DType t) {
  switch (t) {
    case DType::f32: return "F32";
    case DType::bf16: return "BF16";
    case DType::f16: return "F16";
    default: return nullptr;
  }
}

std::string build_header(const fs::path& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                         const std::map<std::string, std::string>& metadata) {
  const std::string label = path.string();
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json m = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) m[k] = v;
    header["__metadata__"] = std::move(m);
  }
  std::set<std::string_view> seen;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    const std::string who = label + ": tensor " + detail::quote_name(name) + ": ";
    require(!name.empty() && name != "__metadata__", StatusCode::invalid_argument,
            label + ": tensor name " + detail::quote_name(name) + " is not allowed");
    require(seen.insert(name).second, StatusCode::invalid_argument, who + "name given twice");
    require(t.defined(), StatusCode::invalid_argument, who + "undefined tensor");
    require(t.is_cpu(), StatusCode::invalid_argument, who + "is on " + t.device().str() + "; save CPU tensors");
    const char* dtype = safetensors_dtype(t.dtype());
    require(dtype != nullptr, StatusCode::unsupported,
            who + std::string(dtype_name(t.dtype())) + " cannot be saved (F32, BF16 and F16 only)");
    nlohmann::ordered_json shape = nlohmann::ordered_json::array();
    for (int64_t d : t.shape().dims()) shape.push_back(d);
    const uint64_t end = offset + t.nbytes();
    header[name] = {{"dtype", dtype}, {"shape", std::move(shape)}, {"data_offsets", {offset, end}}};
    offset = end;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {  // invalid UTF-8 in a name or a metadata string
    throw Error(StatusCode::invalid_argument, label + ": cannot write the header: " + e.what());
  }
  text.append((8 - text.size() % 8) % 8, ' ');  // the reference writer pads with spaces too
  require(text.size() <= detail::kMaxSafetensorsHeader, StatusCode::invalid_argument,
          label + ": the header would be " + std::to_string(text.size()) + " bytes, over the safetensors limit");
  return text;
}

}  // namespace

void save_safetensors(const fs::path& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  const std::string header = build_header(path, tensors, metadata);
  uint8_t length[8];
  for (int i = 0; i < 8; ++i) length[i] = uint8_t(uint64_t(header.size()) >> (8 * i));

  detail::AtomicFile file(path);
  file.write(length, 8);
  file.write(header.data(), header.size());
  for (const auto& [name, t] : tensors)
    if (t.nbytes()) file.write(t.raw(), t.nbytes());
  file.commit();
}

}  // namespace reel
