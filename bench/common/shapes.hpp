// Reads benchmark shape tables (bench/shapes/*.txt): one case per line, whitespace-separated
// fields, '#' starts a comment. Benchmarks take their shapes from these data files.
//
//   for (const auto& row : bench::read_shapes("gemm_wan.txt", 3)) ...   // M K N per line
//   for (const std::string& line : bench::read_shape_lines(bench::shape_table_path(f), "attention shape file")) ...
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace reel::bench {

// A name without '/' is looked up in bench/shapes/; a path with '/' is used as given.
std::string shape_table_path(const std::string& file);

// The file's lines with '#' comments cut off (blank ones included: callers skip lines without
// fields); std::runtime_error "cannot open <what> <path>" when it cannot be read.
std::vector<std::string> read_shape_lines(const std::string& path, const std::string& what);

// Rows of exactly `fields` integers; lines without numbers are skipped, others throw std::runtime_error.
std::vector<std::vector<int64_t>> read_shapes(const std::string& file, size_t fields);

}  // namespace reel::bench
