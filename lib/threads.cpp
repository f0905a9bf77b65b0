#include <omp.h>

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

int num_threads() { return tls_threads > 0 ? tls_threads : hardware_threads(); }

void set_num_threads(int threads) {
  require(threads >= 0, StatusCode::invalid_argument, "thread count must be >= 0 (0 means all hardware threads)");
  tls_threads = threads;
  omp_set_num_threads(num_threads());  // per calling thread: oneDNN's OpenMP regions follow it
}

}  // namespace reel
