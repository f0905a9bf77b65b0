// Test helper: reads tests/fixtures/samplers/ (safetensors with F32/F64 tensors + manifest.json,
// made by tools/reference/make_sampler_fixtures.py) without Python or the weights module.
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/test_util.hpp"

namespace reel::test {

// All tensors of a small safetensors file, as doubles, by name (shape dropped: fixtures are flat
// or [rows, cols] with the column count known from the manifest).
class SafetensorsFixture {
 public:
  explicit SafetensorsFixture(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw std::runtime_error("cannot open fixture " + path);
    uint64_t header_len = 0;
    f.read(reinterpret_cast<char*>(&header_len), 8);
    if (!f || header_len > (1u << 24)) throw std::runtime_error("bad safetensors header in " + path);
    std::string header(header_len, '\0');
    f.read(header.data(), std::streamsize(header_len));
    const std::vector<char> data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    const auto j = nlohmann::json::parse(header);
    for (const auto& [name, info] : j.items()) {
      if (name == "__metadata__") continue;
      const std::string dtype = info.at("dtype");
      const size_t begin = info.at("data_offsets")[0], end = info.at("data_offsets")[1];
      if (end > data.size() || begin > end) throw std::runtime_error("bad offsets for " + name + " in " + path);
      std::vector<double> values;
      if (dtype == "F32") {
        for (size_t o = begin; o + 4 <= end; o += 4) {
          float v;
          std::memcpy(&v, data.data() + o, 4);
          values.push_back(v);
        }
      } else if (dtype == "F64") {
        for (size_t o = begin; o + 8 <= end; o += 8) {
          double v;
          std::memcpy(&v, data.data() + o, 8);
          values.push_back(v);
        }
      } else {
        throw std::runtime_error("unexpected dtype " + dtype + " for " + name + " in " + path);
      }
      tensors_[name] = std::move(values);
    }
  }
  const std::vector<double>& at(const std::string& name) const {
    auto it = tensors_.find(name);
    if (it == tensors_.end()) throw std::runtime_error("fixture tensor " + name + " is missing");
    return it->second;
  }
  bool has(const std::string& name) const { return tensors_.count(name) > 0; }

 private:
  std::map<std::string, std::vector<double>> tensors_;
};

inline nlohmann::json sampler_manifest() {
  std::ifstream f(fixtures_dir() / "samplers" / "manifest.json");
  if (!f) throw std::runtime_error("cannot open tests/fixtures/samplers/manifest.json");
  return nlohmann::json::parse(f);
}

inline std::vector<double> row(const std::vector<double>& m, size_t r, size_t cols) {
  return {m.begin() + long(r * cols), m.begin() + long((r + 1) * cols)};
}

}  // namespace reel::test
