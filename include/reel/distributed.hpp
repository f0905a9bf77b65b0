// Sequence parallelism across processes and machines (docs/distributed.md): the Communicator
// interface reel's collectives go through, its MPI and NCCL implementations, and the
// SequenceParallel setting that splits a transformer's tokens over the ranks.
//
//   // mpirun -np 4 ./my_app   (every rank runs the same code)
//   std::shared_ptr<reel::Communicator> world = reel::mpi_world();   // MPI_COMM_WORLD
//   reel::PipelineLoadOptions o;
//   o.sequence_parallel = {world, /*ulysses=*/2, /*ring=*/2};         // 2 × 2 = 4 ranks
//   reel::Pipeline p = reel::Pipeline::load("models/reel-wan-demo", o);
//   reel::GenerateResult r = p.generate(request);   // the same request on every rank
//   if (world->rank() == 0) reel::write_video(r.video, "out.mp4");   // rank 0 holds the frames
//
// Ulysses (degree U): around each self-attention an all-to-all trades the token split for a
// head split, so every rank attends over its tokens group for H/U heads. Ring (degree R): the
// key/value blocks travel around the ring and each partial result is merged with its
// log-sum-exp. U·R = the number of ranks; H must be a multiple of U. Text cross-attention, the
// MLP and every other op run on each rank's own tokens. A communicator of your own (an MPI
// communicator: reel/mpi.hpp) or another transport implements Communicator.
#pragma once
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <span>
#include <string_view>

#include "reel/export.hpp"
#include "reel/tensor.hpp"

namespace reel {

// A group of ranks and the collectives reel needs. Every rank of the group calls each
// collective in the same order (as with MPI). Data buffers live on buffer_device() (the host
// for MPI, the GPU for NCCL); byte counts are per peer, buffers packed peer after peer.
// Failures throw Error (io_error naming the collective and the transport's message).
class REEL_API Communicator {
 public:
  virtual ~Communicator() = default;
  virtual std::string_view transport() const = 0;  // "mpi", "nccl"
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual Device buffer_device() const = 0;

  // Peer i gets send bytes [Σ_{j<i} send_bytes[j], +send_bytes[i]); recv likewise from peer i.
  virtual void all_to_all(const void* send, std::span<const size_t> send_bytes, void* recv,
                          std::span<const size_t> recv_bytes) = 0;
  // Every rank's `bytes` (recv_bytes[i] from rank i), packed in rank order on every rank.
  virtual void all_gather(const void* send, size_t bytes, void* recv, std::span<const size_t> recv_bytes) = 0;
  // Sends to `dest` while receiving from `source` (a ring step).
  virtual void send_recv(const void* send, size_t send_bytes, int dest, void* recv, size_t recv_bytes,
                         int source) = 0;
  // Host values, element-wise maximum over the ranks, in place.
  virtual void all_reduce_max(std::span<int64_t> values) = 0;
  // Host bytes from `root` to every rank.
  virtual void broadcast(void* data, size_t bytes, int root) = 0;
  // The ranks with the same color, ordered by key (MPI_Comm_split).
  virtual std::shared_ptr<Communicator> split(int color, int key) const = 0;
};

// Whether this build has MPI (REEL_MPI) and NCCL (REEL_NCCL).
REEL_API bool mpi_built() noexcept;
REEL_API bool nccl_built() noexcept;
// MPI_COMM_WORLD (a duplicate). Initialises MPI (threads: funneled) unless the program did;
// reel then finalises it at exit. Throws unsupported in a build without MPI.
REEL_API std::shared_ptr<Communicator> mpi_world();
// An MPI_Comm given by its bytes (what reel/mpi.hpp's mpi_communicator(MPI_Comm) passes, so
// that this header needs no <mpi.h>): a duplicate of it. unsupported without MPI,
// invalid_argument when the size is not this build's MPI_Comm's or MPI is not initialised.
REEL_API std::shared_ptr<Communicator> mpi_communicator_from_handle(const void* handle, size_t handle_size);
// Whether this process was started by an MPI launcher (mpirun/srun) with more than one rank,
// read from the launcher's environment without initialising MPI.
REEL_API bool launched_with_several_ranks() noexcept;
// GPU ranks: an NCCL communicator over the ranks of `bootstrap` (an MPI one: it carries NCCL's
// unique id and the host-side agreement), using CUDA device `device` on this rank; its data
// buffers are on that GPU. Throws unsupported in a build without NCCL.
//   auto world = reel::mpi_world();
//   auto gpus = reel::nccl_communicator(world, local_rank);   // one GPU per rank
REEL_API std::shared_ptr<Communicator> nccl_communicator(std::shared_ptr<Communicator> bootstrap, int device);

// How a transformer's tokens are split over the ranks of `comm`. No communicator, or one rank:
// one process. ulysses · ring must equal comm->size(). 0 for one of them: the ranks / the
// other; 0 for both: the largest Ulysses degree that divides both the ranks and the heads
// (all-to-all is cheaper than ring passes), the rest ring.
struct SequenceParallel {
  std::shared_ptr<Communicator> comm;
  int ulysses = 0;
  int ring = 0;
  bool active() const { return comm && comm->size() > 1; }
};

// Every rank calls it at the same point with what happened there (nullptr: nothing failed).
// When some rank failed, every rank throws the Error of the lowest failing rank (its status
// code; the message names the rank), so all ranks end with the same status and none waits
// for a collective another rank will never call.
REEL_API void agree(Communicator& comm, std::exception_ptr local);

}  // namespace reel
