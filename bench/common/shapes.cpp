// Shape-table reading for the benchmarks (shapes.hpp). REEL_BENCH_SHAPES_DIR is bench/shapes,
// set by bench/CMakeLists.txt.
#include "common/shapes.hpp"

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace reel::bench {

std::string shape_table_path(const std::string& file) {
  return file.find('/') == std::string::npos ? std::string(REEL_BENCH_SHAPES_DIR) + "/" + file : file;
}

std::vector<std::string> read_shape_lines(const std::string& path, const std::string& what) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + what + " " + path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line.substr(0, line.find('#')));
  return lines;
}

std::vector<std::vector<int64_t>> read_shapes(const std::string& file, size_t fields) {
  const std::string path = shape_table_path(file);
  std::vector<std::vector<int64_t>> rows;
  for (const std::string& line : read_shape_lines(path, "shape table")) {
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
