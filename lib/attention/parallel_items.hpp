// Internal: parallel loops for the attention kernels that carry an exception out of the
// OpenMP region (one escaping a region would terminate the process) and rethrow it.
#pragma once
#include <atomic>
#include <exception>
#include <mutex>

#include "parallel.hpp"

namespace reel::attn {

// parallel_for_each(n, fn); the first exception thrown by fn is rethrown after the loop and
// the remaining items are skipped.
template <class F>
void for_each_item(int64_t n, F&& fn) {
  std::exception_ptr error;
  std::atomic<bool> failed{false};
  std::mutex mutex;
  parallel_for_each(n, [&](int64_t i) {
    if (failed.load(std::memory_order_relaxed)) return;
    try {
      fn(i);
    } catch (...) {
      std::lock_guard lock(mutex);
      if (!error) error = std::current_exception();
      failed.store(true, std::memory_order_relaxed);
    }
  });
  if (error) std::rethrow_exception(error);
}

// parallel_for(n, grain, fn) with the same exception handling.
template <class F>
void for_each_range(int64_t n, int64_t grain, F&& fn) {
  std::exception_ptr error;
  std::mutex mutex;
  parallel_for(n, grain, [&](int64_t begin, int64_t end) {
    try {
      fn(begin, end);
    } catch (...) {
      std::lock_guard lock(mutex);
      if (!error) error = std::current_exception();
    }
  });
  if (error) std::rethrow_exception(error);
}

}  // namespace reel::attn
