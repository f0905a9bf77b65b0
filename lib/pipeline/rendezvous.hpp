// Internal: where the variants' sampler loops meet (denoise_variants, denoise.cpp). n loops,
// one thread each, call call() at every model call; the last to arrive runs one batched call
// for all present and wakes the others. Samplers call the model in the same order at the same
// timesteps (one schedule), so every call gathers all live loops; a loop whose step cache skips
// the call still meets the others there, without an input (the batch runs without it; when
// every loop skips, nothing runs). A failure anywhere (cancel included) is handed to every loop.
#pragma once
#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <span>
#include <utility>
#include <vector>

#include "reel/status.hpp"
#include "reel/tensor.hpp"

namespace reel::pipeline {

class Rendezvous {
 public:
  using BatchFn = std::function<std::vector<Tensor>(std::span<const Tensor* const>, float)>;
  Rendezvous(int n, BatchFn batch) : batch_(std::move(batch)), inputs_(size_t(n), nullptr), outputs_(size_t(n)), live_(n) {}

  // v for loop i's x at t; x null: loop i skips this call (returns an undefined tensor).
  Tensor call(int i, const Tensor* x, float t) {
    std::unique_lock lock(mutex_);
    if (error_) std::rethrow_exception(error_);
    inputs_[size_t(i)] = x;
    if (arrived_ == 0) t_ = t;
    else if (t != t_) error_ = std::make_exception_ptr(Error(StatusCode::internal, "variants: model calls out of step"));
    ++arrived_;
    const uint64_t generation = generation_;
    if (arrived_ == live_) run_locked(lock);
    else cv_.wait(lock, [&] { return generation_ != generation || error_; });
    if (error_) std::rethrow_exception(error_);
    Tensor v = std::exchange(outputs_[size_t(i)], Tensor());
    return x ? v : Tensor();
  }
  // Loop i is done (or failed): no longer waited for.
  void leave(std::exception_ptr failure) {
    std::unique_lock lock(mutex_);
    if (failure && !error_) error_ = failure;
    --live_;
    if (error_) cv_.notify_all();
    else if (live_ > 0 && arrived_ == live_) run_locked(lock);
  }

 private:
  void run_locked(std::unique_lock<std::mutex>& lock) {
    std::vector<const Tensor*> xs;
    std::vector<size_t> who;
    for (size_t k = 0; k < inputs_.size(); ++k)
      if (inputs_[k]) xs.push_back(inputs_[k]), who.push_back(k);
    try {
      if (error_) std::rethrow_exception(error_);
      lock.unlock();
      std::vector<Tensor> vs;
      if (!xs.empty()) vs = batch_(xs, t_);  // every other live loop is waiting (none: all skipped)
      lock.lock();
      for (size_t k = 0; k < who.size(); ++k) outputs_[who[k]] = std::move(vs[k]);
    } catch (...) {
      if (!lock.owns_lock()) lock.lock();
      if (!error_) error_ = std::current_exception();
    }
    for (const Tensor*& in : inputs_) in = nullptr;
    arrived_ = 0;
    ++generation_;
    cv_.notify_all();
  }

  BatchFn batch_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<const Tensor*> inputs_;
  std::vector<Tensor> outputs_;
  int live_ = 0, arrived_ = 0;
  float t_ = 0;
  uint64_t generation_ = 0;
  std::exception_ptr error_;
};

}  // namespace reel::pipeline
