// Reads benchmark shape tables (bench/shapes/*.txt): one case per line, whitespace-separated
// integers, '#' starts a comment. Benchmarks take their shapes from these data files.
#pragma once
#include <cstdint>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace reel::bench {

inline std::vector<std::vector<int64_t>> read_shapes(const std::string& file, size_t fields) {
  const std::string path = std::string(REEL_BENCH_SHAPES_DIR) + "/" + file;
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open shape table " + path);
  std::vector<std::vector<int64_t>> rows;
  std::string line;
  while (std::getline(in, line)) {
    line = line.substr(0, line.find('#'));
    std::istringstream ss(line);
    std::vector<int64_t> row;
    int64_t v;
    while (ss >> v) row.push_back(v);
    if (row.empty()) continue;
    if (row.size() != fields)
      throw std::runtime_error(path + ": expected " + std::to_string(fields) + " numbers in '" + line + "'");
    rows.push_back(row);
  }
  return rows;
}

}  // namespace reel::bench
