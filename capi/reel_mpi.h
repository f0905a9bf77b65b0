/* The C API's MPI adapter: a reel_communicator over an MPI communicator of your own (reel
 * uses a duplicate of it). Include it only where <mpi.h> is; reel must have been built with
 * the same MPI.
 *
 *   reel_communicator* comm;
 *   reel_communicator_from_mpi(MPI_COMM_WORLD, &comm);
 */
#ifndef REEL_MPI_H
#define REEL_MPI_H

#include <mpi.h>

#include "reel.h"

static inline reel_status reel_communicator_from_mpi(MPI_Comm comm, reel_communicator** out) {
  return reel_communicator_from_mpi_handle(&comm, sizeof comm, out);
}

#endif /* REEL_MPI_H */
