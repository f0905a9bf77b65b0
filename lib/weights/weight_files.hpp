// Internal: which safetensors file(s) a path passed to WeightStore::open stands for: a single
// file, a sharded set behind *.safetensors.index.json, or a (diffusers component) folder holding
// either. Pickle checkpoints are refused here, with advice on what to use instead.
#pragma once
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace reel::detail {

struct WeightFiles {
  std::filesystem::path index;               // the *.safetensors.index.json, empty for a single file
  std::vector<std::filesystem::path> files;  // one file, or the shards sorted by name
  // Sharded only: tensor name -> the shard's file name, as the index claims.
  std::map<std::string, std::string, std::less<>> shard_of;
};

// Throws not_found (nothing there, or no safetensors in the folder), unsupported (pickle),
// bad_format (a malformed or hostile index: duplicate keys, path traversal), io_error.
WeightFiles find_weight_files(const std::filesystem::path& path);

}  // namespace reel::detail
