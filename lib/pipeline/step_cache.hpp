// Internal: step caching for the denoising loop. The guided model is seen as one function
// x → v; on a step the criterion judges predictable, v is taken as x + d, d = v − x of the
// last step computed (the model's transformation of its input, which changes slowly between
// neighbouring steps), and the transformer is not run.
//
// Criteria (GenerateRequest::step_cache.method):
//   easycache  EasyCache (Zhou et al. 2025, "Less is Enough: Training-Free Video Diffusion
//              Acceleration via Runtime-Adaptive Caching", arXiv:2507.02860): from the last two
//              computed calls, the transformation rate k = (|Δv|/|v|) / (|Δx|/|x|); each later
//              call adds k·|x − x_prev|/|x_prev| to an estimate of the relative output change,
//              and the call is skipped while that estimate stays below the threshold.
//   teacache   TeaCache (Liu et al. 2025, "Timestep Embedding Tells: It's Time to Cache for
//              Video Diffusion Model", CVPR 2025, arXiv:2411.19108): the relative L1 change of
//              the input between calls, accumulated; skipped while below the threshold. TeaCache
//              measures the timestep-modulated input of the first block and rescales it with a
//              polynomial fitted per model; reel measures the model's input itself, unfitted.
// Both compute the first `warmup` calls and every call at the last step's timestep, and reset
// their accumulator whenever they compute.
#pragma once
#include <functional>
#include <optional>

#include "reel/pipeline.hpp"
#include "reel/tensor.hpp"

namespace reel::pipeline {

class StepCache {
 public:
  using Model = std::function<Tensor(const Tensor& x, float t)>;
  // Throws invalid_argument naming a bad option.
  static void check(const StepCacheOptions& options);
  StepCache(const StepCacheOptions& options, float last_timestep);
  // v at (x, t): `model(x, t)`, or the cached transformation applied to x.
  Tensor velocity(const Tensor& x, float t, const Model& model);
  int computed() const { return computed_; }
  int skipped() const { return skipped_; }

 private:
  bool can_skip(const Tensor& x, float t);
  StepCacheOptions options_;
  float last_timestep_;
  int computed_ = 0, skipped_ = 0;
  double accumulated_ = 0;
  double rate_ = -1;      // easycache: k, once two calls were computed
  Tensor x_prev_;         // the input of the previous call (computed or skipped)
  Tensor x_done_, v_done_;  // the last computed call
  Tensor delta_;          // v − x of the last computed call
};

}  // namespace reel::pipeline
