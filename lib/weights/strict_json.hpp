// Internal: reading small untrusted files (config.json, index.json, tokenizer files). A strict
// JSON reader: valid UTF-8, no duplicate keys (nlohmann::json would silently keep the last one),
// bounded depth and size; and the one way to read a small file whole: its kind and size are
// checked before any byte is read, so a FIFO, /dev/zero or a huge sparse file is refused at once.
//
//   nlohmann::json j = reel::detail::read_json_file(folder / "config.json", "transformer config");
//   nlohmann::json k = reel::detail::parse_json_strict(text, "model.safetensors.index.json");
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "regular_file.hpp"

namespace reel::detail {

// Throws Error(bad_format) with a message starting with `label` on any violation.
nlohmann::json parse_json_strict(std::string_view text, const std::string& label, size_t max_depth = 64,
                                 size_t max_values = 4'000'000);


// read_small_file + parse_json_strict; bad_format unless the top level is an object.
constexpr std::uintmax_t kMaxConfigBytes = 16u << 20;
nlohmann::json read_json_file(const std::filesystem::path& path, const std::string& what,
                              std::uintmax_t limit = kMaxConfigBytes);

}  // namespace reel::detail
