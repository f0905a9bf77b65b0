// Shared by the programs of tests/distributed (run under mpirun): MPI_COMM_WORLD, made once,
// and the skip for a program started as one process.
#pragma once
#include <gtest/gtest.h>

#include <memory>

#include "reel/distributed.hpp"

namespace reel::test {

inline std::shared_ptr<Communicator> world() {
  static std::shared_ptr<Communicator> w = mpi_world();
  return w;
}

}  // namespace reel::test

#define NEED_RANKS()                                                    \
  if (::reel::test::world()->size() < 2) GTEST_SKIP() << "run under mpirun with 2 or more ranks"
