// Internal: a strict JSON reader for untrusted files (index.json, config.json): valid UTF-8,
// no duplicate keys (nlohmann::json would silently keep the last one), bounded depth and size.
//
//   nlohmann::json j = reel::detail::parse_json_strict(text, "model.safetensors.index.json");
#pragma once
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace reel::detail {

// Throws Error(bad_format) with a message starting with `label` on any violation.
nlohmann::json parse_json_strict(std::string_view text, const std::string& label, size_t max_depth = 64,
                                 size_t max_values = 4'000'000);

}  // namespace reel::detail
