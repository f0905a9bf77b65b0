// find_weight_files: folder detection, the sharded index (weight_map) and the pickle refusal.
#include "weights/weight_files.hpp"

#include <algorithm>
#include <set>
#include <system_error>

#include "reel/status.hpp"
#include "weights/mapped_file.hpp"
#include "weights/safetensors_header.hpp"
#include "weights/strict_json.hpp"

namespace reel::detail {
namespace fs = std::filesystem;

namespace {

constexpr const char* kSafetensorsAdvice =
    "reel never parses pickle files (.pth/.pt/.ckpt/.bin): loading one can run arbitrary code. "
    "Use the safetensors files instead: the *-Diffusers repositories (e.g. Wan-AI/Wan2.1-T2V-1.3B-Diffusers, whose "
    "transformer/, vae/ and text_encoder/ folders hold *.safetensors) or the ComfyUI repackaged files "
    "(e.g. Comfy-Org/Wan_2.1_ComfyUI_repackaged: split_files/vae/wan_2.1_vae.safetensors)";

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_pickle_name(const std::string& name) {
  for (const char* ext : {".pth", ".pt", ".ckpt", ".bin", ".pkl", ".pickle"})
    if (ends_with(name, ext)) return true;
  return false;
}

bool is_index_name(const std::string& name) { return ends_with(name, ".safetensors.index.json"); }

std::string join(const std::vector<std::string>& names, size_t max = 8) {
  std::string s;
  for (size_t i = 0; i < names.size() && i < max; ++i) s += (i ? ", " : "") + names[i];
  if (names.size() > max) s += ", ... (" + std::to_string(names.size()) + " files)";
  return s;
}

// A shard named in an index must be a plain file name in the index's folder.
void check_shard_name(const std::string& shard, const std::string& tensor, const std::string& label) {
  const bool plain = !shard.empty() && shard != "." && shard != ".." && shard.find('/') == std::string::npos &&
                     shard.find('\\') == std::string::npos && shard.find('\0') == std::string::npos;
  if (!plain)
    throw Error(StatusCode::bad_format, label + ": tensor " + quote_name(tensor) + ": shard " + quote_name(shard) +
                                            " is not a plain file name in the index's folder (paths, including "
                                            "'..' and absolute paths, are refused)");
  if (is_pickle_name(shard))
    throw Error(StatusCode::unsupported, label + ": tensor " + quote_name(tensor) + " is in pickle shard " +
                                             quote_name(shard) + ". " + kSafetensorsAdvice);
}

WeightFiles read_index(const fs::path& index) {
  const std::string label = index.string();
  const auto file = MappedFile::open(index);
  if (file->size() > kMaxSafetensorsHeader)
    throw Error(StatusCode::bad_format, label + ": index is " + std::to_string(file->size()) +
                                            " bytes, more than the limit of " + std::to_string(kMaxSafetensorsHeader));
  const auto bytes = file->bytes();
  const nlohmann::json j =
      parse_json_strict(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), label);
  if (!j.is_object()) throw Error(StatusCode::bad_format, label + ": index is not a JSON object");
  const auto map = j.find("weight_map");
  if (map == j.end()) throw Error(StatusCode::bad_format, label + ": index has no \"weight_map\"");
  if (!map->is_object()) throw Error(StatusCode::bad_format, label + ": \"weight_map\" is not an object");

  WeightFiles out;
  out.index = index;
  std::set<std::string> shards;
  for (const auto& [tensor, shard] : map->items()) {
    if (!shard.is_string())
      throw Error(StatusCode::bad_format,
                  label + ": weight_map entry for tensor " + quote_name(tensor) + " is not a file name string");
    const std::string& name = shard.get_ref<const std::string&>();
    check_shard_name(name, tensor, label);
    out.shard_of.emplace(tensor, name);
    shards.insert(name);
  }
  if (shards.empty()) throw Error(StatusCode::bad_format, label + ": \"weight_map\" lists no tensors");
  const fs::path folder = index.parent_path();
  for (const std::string& s : shards) out.files.push_back(folder / s);  // std::set: sorted by name
  return out;
}

WeightFiles find_in_folder(const fs::path& folder) {
  std::vector<std::string> safetensors, indexes, pickles;
  std::error_code ec;
  for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code ec2;
    if (!it->is_regular_file(ec2)) continue;
    const std::string name = it->path().filename().string();
    if (is_index_name(name)) indexes.push_back(name);
    else if (ends_with(name, ".safetensors")) safetensors.push_back(name);
    else if (is_pickle_name(name)) pickles.push_back(name);
  }
  if (ec) throw Error(StatusCode::io_error, folder.string() + ": cannot list the folder: " + ec.message());
  std::sort(safetensors.begin(), safetensors.end());
  std::sort(indexes.begin(), indexes.end());
  std::sort(pickles.begin(), pickles.end());
  auto has = [](const std::vector<std::string>& v, const std::string& n) {
    return std::find(v.begin(), v.end(), n) != v.end();
  };

  // The diffusers and transformers names first, then any single candidate.
  for (const char* name : {"diffusion_pytorch_model.safetensors", "model.safetensors"})
    if (has(safetensors, name)) return WeightFiles{{}, {folder / name}, {}};
  for (const char* name : {"diffusion_pytorch_model.safetensors.index.json", "model.safetensors.index.json"})
    if (has(indexes, name)) return read_index(folder / name);
  if (indexes.size() == 1) return read_index(folder / indexes[0]);
  if (indexes.size() > 1)
    throw Error(StatusCode::not_found, folder.string() + ": holds several sharded indexes (" + join(indexes) +
                                           "): pass the one to load");
  if (safetensors.size() == 1) return WeightFiles{{}, {folder / safetensors[0]}, {}};
  if (safetensors.size() > 1)
    throw Error(StatusCode::not_found, folder.string() + ": holds several safetensors files (" + join(safetensors) +
                                           ") and no diffusion_pytorch_model.safetensors, model.safetensors or "
                                           "*.safetensors.index.json: pass the file to load");
  if (!pickles.empty())
    throw Error(StatusCode::unsupported, folder.string() + ": holds no safetensors file, only pickle checkpoints (" +
                                             join(pickles) + "). " + kSafetensorsAdvice);
  throw Error(StatusCode::not_found, folder.string() +
                                         ": holds no diffusion_pytorch_model.safetensors, model.safetensors, "
                                         "*.safetensors.index.json or other *.safetensors file");
}

}  // namespace

WeightFiles find_weight_files(const fs::path& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) {
    if (!ec || ec == std::errc::no_such_file_or_directory || ec == std::errc::not_a_directory)
      throw Error(StatusCode::not_found, path.string() + ": no such file or folder");
    throw Error(StatusCode::io_error, path.string() + ": " + ec.message());
  }
  if (fs::is_directory(st)) return find_in_folder(path);
  const std::string name = path.filename().string();
  if (is_pickle_name(name) || ends_with(name, ".bin.index.json"))
    throw Error(StatusCode::unsupported, path.string() + ": is a pickle checkpoint. " + kSafetensorsAdvice);
  if (is_index_name(name)) return read_index(path);
  return WeightFiles{{}, {path}, {}};
}

}  // namespace reel::detail
