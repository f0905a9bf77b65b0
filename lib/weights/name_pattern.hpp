// Internal: the one way loaders turn a checkpoint-name pattern into a tensor name. A pattern
// holds at most one "{}", the layer (block) index: "blocks.{}.ffn.0.weight" with 3 gives
// "blocks.3.ffn.0.weight"; a pattern without it is returned as is.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace reel::detail {

inline std::string layer_name(std::string_view pattern, int64_t layer) {
  std::string s(pattern);
  if (const size_t at = s.find("{}"); at != std::string::npos) s.replace(at, 2, std::to_string(layer));
  return s;
}

}  // namespace reel::detail
