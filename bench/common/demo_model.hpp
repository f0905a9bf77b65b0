// The trained demo model (models/reel-wan-demo) as the benches that measure what a user sees
// load it: f32, loaded once per process.
#pragma once
#include <filesystem>

#include "reel/pipeline.hpp"

namespace reel::bench {

inline const Pipeline& demo_pipeline() {
  static const Pipeline p = Pipeline::load({.folder = std::filesystem::path(REEL_BENCH_MODELS_DIR) / "reel-wan-demo",
                                            .precision = PipelinePrecision::f32});
  return p;
}

}  // namespace reel::bench
