// The MPI adapter: a reel::Communicator over an MPI communicator of your own (a duplicate of
// it: reel's collectives never mix with yours). Include it only in code that has <mpi.h>; the
// library must have been built with the same MPI (REEL_MPI).
//
//   #include <mpi.h>
//   #include "reel/mpi.hpp"
//   MPI_Comm node;  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
//   std::shared_ptr<reel::Communicator> comm = reel::mpi_communicator(node);
#pragma once
#include <mpi.h>

#include <cstddef>
#include <memory>

#include "reel/distributed.hpp"

namespace reel {

inline std::shared_ptr<Communicator> mpi_communicator(MPI_Comm comm) {
  return mpi_communicator_from_handle(&comm, sizeof comm);
}

}  // namespace reel
