// Internal: writes a GGUF v3 file (what reel's reader, llama.cpp's gguf-py and ComfyUI-GGUF
// read): string metadata, then tensors of any ggml type reel knows, data aligned to 32 bytes.
// Tensors of more than 4 dimensions are stored flat over their last ones with their real shape
// in comfy.gguf.orig_shape.<name> (an INT32 array), as ComfyUI-GGUF does. Written atomically.
//
//   std::vector<detail::GgufTensor> t{{"blocks.0.ffn.0.weight", FileDType::q8_0, {8960, 1536}, bytes}};
//   detail::save_gguf("model-Q8_0.gguf", t, {{"general.architecture", "wan"}});
#pragma once
#include <cstddef>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "reel/tensor.hpp"
#include "reel/weights.hpp"

namespace reel::detail {

struct GgufTensor {
  std::string name;
  FileDType type;
  Shape shape;                  // PyTorch order (the last dimension is ggml's ne[0])
  std::vector<std::byte> data;  // the type's bytes (whole blocks), row-major
};

// Throws invalid_argument (a duplicate name, a size that does not fit the type, a row length
// that is not a multiple of the block) or io_error.
void save_gguf(const std::filesystem::path& path, const std::vector<GgufTensor>& tensors,
               const std::vector<std::pair<std::string, std::string>>& metadata);

}  // namespace reel::detail
