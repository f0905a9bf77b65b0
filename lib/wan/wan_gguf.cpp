// convert_to_gguf: a Wan transformer checkpoint rewritten as a GGUF file, tensor by tensor
// (one tensor in memory at a time), through the name table of wan_weights.cpp.
#include <cstring>
#include <filesystem>

#include "reel/status.hpp"
#include "reel/weights.hpp"
#include "wan/wan_model.hpp"
#include "weights/gguf_dequant.hpp"
#include "weights/save_gguf.hpp"

namespace reel {

void convert_to_gguf(const std::filesystem::path& transformer, const std::filesystem::path& out, WanWeightFormat type,
                     int64_t head_dim) {
  require(type == WanWeightFormat::q8_0 || type == WanWeightFormat::q4_0 || type == WanWeightFormat::q4_k,
          StatusCode::invalid_argument,
          "convert_to_gguf: the weight type must be q8_0, q4_0 or q4_k, not " + std::string(weight_format_name(type)));
  const FileDType wanted = type == WanWeightFormat::q8_0   ? FileDType::q8_0
                           : type == WanWeightFormat::q4_0 ? FileDType::q4_0
                                                           : FileDType::q4_k;
  const WeightStore store = WeightStore::open(transformer);
  const wan::CheckpointNames names = wan::detect_names(store);
  const WanConfig config = wan::detect_config(store, names, head_dim, wan::find_config_json(transformer));
  wan::check_weights(store, names, config);
  const wan::CheckpointNames gguf_names{WanLayout::original, ""};  // city96's Wan GGUFs: no prefix

  std::vector<detail::GgufTensor> tensors;
  wan::for_each_param(config, [&](std::string_view key, int64_t block, const Shape& shape, bool block_linear) {
    const std::string source = wan::checkpoint_name(names, key, block);
    const Tensor t = store.load_weight(source, DType::f32);  // dequantised by an fp8 scale if any
    detail::GgufTensor g{wan::checkpoint_name(gguf_names, key, block), FileDType::f32, shape, {}};
    if (block_linear && shape.rank() == 2 && shape[1] % 32 == 0) {
      g.type = wanted == FileDType::q4_k && shape[1] % 256 != 0 ? FileDType::q8_0 : wanted;  // Q4_K rows: 256s
      const detail::GgufBlock gb = detail::gguf_block(g.type);
      g.data.resize(size_t(shape.numel()) / gb.elements * gb.bytes);
      detail::quantize_gguf(g.type, t.data<float>(), g.data.data(), size_t(shape.numel()));
    } else {
      g.data.resize(t.nbytes());
      std::memcpy(g.data.data(), t.raw(), t.nbytes());
    }
    tensors.push_back(std::move(g));
  });
  detail::save_gguf(out, tensors,
                    {{"general.architecture", "wan"},
                     {"general.quantized_by", "reel"},
                     {"general.file_type_name", std::string(weight_format_name(type))},
                     {std::string(wan::kGgufHeadDimKey), std::to_string(config.head_dim)}});
}

}  // namespace reel
