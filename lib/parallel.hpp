// Internal: reel's CPU parallel loops. OpenMP, the same runtime oneDNN uses here, with the
// thread count of the calling thread (reel::set_num_threads).
#pragma once
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>

#include "reel/backend.hpp"

namespace reel {

// Calls fn(begin, end) on contiguous chunks covering [0, n), at least `grain` items per chunk.
// The chunking depends only on n, grain and the thread count.
template <class F>
void parallel_for(int64_t n, int64_t grain, F&& fn) {
  if (n <= 0) return;
  const int threads = num_threads();
  const int64_t max_chunks = std::max<int64_t>(1, n / std::max<int64_t>(1, grain));
  const int64_t chunks = std::min<int64_t>(threads, max_chunks);
  if (chunks <= 1 || omp_in_parallel()) {
    fn(int64_t(0), n);
    return;
  }
#pragma omp parallel for num_threads(int(chunks)) schedule(static, 1)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t begin = n * c / chunks;
    const int64_t end = n * (c + 1) / chunks;
    fn(begin, end);
  }
}

// Calls fn(i) for every i in [0, n), dynamically balanced (for uneven work items).
template <class F>
void parallel_for_each(int64_t n, F&& fn) {
  if (n <= 0) return;
  const int threads = std::min<int64_t>(num_threads(), n);
  if (threads <= 1 || omp_in_parallel()) {
    for (int64_t i = 0; i < n; ++i) fn(i);
    return;
  }
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
  for (int64_t i = 0; i < n; ++i) fn(i);
}

// parallel_for for bodies that may throw (they allocate): an exception must not leave an
// OpenMP region, so the first one is kept and rethrown on the calling thread.
template <class F>
void parallel_for_checked(int64_t n, int64_t grain, F&& fn) {
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

// parallel_for_each for bodies that may throw: the first exception is rethrown after the
// loop and the remaining items are skipped.
template <class F>
void parallel_for_each_checked(int64_t n, F&& fn) {
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

}  // namespace reel
