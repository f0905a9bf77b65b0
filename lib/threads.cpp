#include <omp.h>

#include <algorithm>
#include <string>
#include <thread>

#include "reel/backend.hpp"

namespace reel {

namespace {
thread_local int tls_threads = 0;
int hardware_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : int(n);
}
}  // namespace

int max_threads() { return std::max(64, 4 * hardware_threads()); }

void check_thread_count(int threads, const std::string& what) {
  require(threads >= 0 && threads <= max_threads(), StatusCode::invalid_argument,
          what + " must be between 0 (all hardware threads) and " + std::to_string(max_threads()) + " (4x the " +
              std::to_string(hardware_threads()) + " hardware threads, at least 64), got " + std::to_string(threads));
}

int num_threads() { return tls_threads > 0 ? tls_threads : hardware_threads(); }

void set_num_threads(int threads) {
  check_thread_count(threads, "the thread count");
  tls_threads = threads;
  omp_set_num_threads(num_threads());  // per calling thread: oneDNN's OpenMP regions follow it
}

}  // namespace reel
