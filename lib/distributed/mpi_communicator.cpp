// The MPI Communicator (REEL_MPI): reel's collectives on a duplicate of an MPI communicator,
// with errors returned (MPI_ERRORS_RETURN) and turned into reel::Error instead of aborting.
#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "reel/distributed.hpp"
#include "reel/status.hpp"

#ifdef REEL_HAVE_MPI
#include <mpi.h>
#endif

namespace reel {

bool mpi_built() noexcept {
#ifdef REEL_HAVE_MPI
  return true;
#else
  return false;
#endif
}

bool launched_with_several_ranks() noexcept {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MV2_COMM_WORLD_SIZE"})
    if (const char* v = std::getenv(name); v && std::atoi(v) > 1) return true;
  return false;
}

#ifdef REEL_HAVE_MPI

namespace {

void check_mpi(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  throw Error(StatusCode::io_error, std::string("MPI ") + what + " failed: " + std::string(text, size_t(len)));
}

// MPI counts and displacements are ints: byte counts above INT_MAX are refused by name.
std::vector<int> int_counts(std::span<const size_t> bytes, const char* what) {
  std::vector<int> out;
  for (size_t b : bytes) {
    if (b > size_t(INT_MAX))
      throw Error(StatusCode::unsupported, std::string("MPI ") + what + ": " + std::to_string(b) +
                                               " bytes to one rank is more than an MPI count holds (2 GiB)");
    out.push_back(int(b));
  }
  return out;
}

std::vector<int> displacements(const std::vector<int>& counts, const char* what) {
  std::vector<int> d(counts.size());
  size_t at = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (at > size_t(INT_MAX))
      throw Error(StatusCode::unsupported, std::string("MPI ") + what + ": more than 2 GiB in one buffer");
    d[i] = int(at);
    at += size_t(counts[i]);
  }
  return d;
}

// MPI initialised by reel is finalised when the program exits.
struct MpiLifetime {
  bool owned = false;
  ~MpiLifetime() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (owned && !finalized) MPI_Finalize();
  }
};

void ensure_initialised() {
  static MpiLifetime lifetime;
  int initialised = 0;
  MPI_Initialized(&initialised);
  if (initialised) return;
  int provided = 0;
  check_mpi(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided), "MPI_Init_thread");
  lifetime.owned = true;
}

class MpiCommunicator final : public Communicator {
 public:
  explicit MpiCommunicator(MPI_Comm comm) : comm_(comm) {
    check_mpi(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
    check_mpi(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
    check_mpi(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
  }
  ~MpiCommunicator() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Comm_free(&comm_);
  }

  std::string_view transport() const override { return "mpi"; }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  Device buffer_device() const override { return Device::cpu(); }

  void all_to_all(const void* send, std::span<const size_t> send_bytes, void* recv,
                  std::span<const size_t> recv_bytes) override {
    check_peers(send_bytes.size(), "all_to_all send counts");
    check_peers(recv_bytes.size(), "all_to_all recv counts");
    const std::vector<int> sc = int_counts(send_bytes, "all_to_all"), rc = int_counts(recv_bytes, "all_to_all");
    const std::vector<int> sd = displacements(sc, "all_to_all"), rd = displacements(rc, "all_to_all");
    check_mpi(MPI_Alltoallv(send, sc.data(), sd.data(), MPI_BYTE, recv, rc.data(), rd.data(), MPI_BYTE, comm_),
              "MPI_Alltoallv");
  }

  void all_gather(const void* send, size_t bytes, void* recv, std::span<const size_t> recv_bytes) override {
    check_peers(recv_bytes.size(), "all_gather recv counts");
    const std::vector<int> rc = int_counts(recv_bytes, "all_gather");
    const std::vector<int> rd = displacements(rc, "all_gather");
    require(bytes == recv_bytes[size_t(rank_)], StatusCode::internal,
            "all_gather: this rank sends " + std::to_string(bytes) + " bytes but recv_bytes says " +
                std::to_string(recv_bytes[size_t(rank_)]));
    check_mpi(MPI_Allgatherv(send, rc[size_t(rank_)], MPI_BYTE, recv, rc.data(), rd.data(), MPI_BYTE, comm_),
              "MPI_Allgatherv");
  }

  void send_recv(const void* send, size_t send_bytes, int dest, void* recv, size_t recv_bytes, int source) override {
    const size_t counts[2] = {send_bytes, recv_bytes};
    const std::vector<int> c = int_counts(counts, "send_recv");
    check_mpi(MPI_Sendrecv(send, c[0], MPI_BYTE, dest, kTag, recv, c[1], MPI_BYTE, source, kTag, comm_,
                           MPI_STATUS_IGNORE),
              "MPI_Sendrecv");
  }

  // The ranks' agreement points (reel::agree) may wait long: for rank 0's VAE decode, a slow
  // rank. MPI's blocking calls spin on a core meanwhile, taking it from the ranks that work
  // (ranks share a machine's cores); this wait sleeps between tests instead.
  void all_reduce_max(std::span<int64_t> values) override {
    static_assert(sizeof(long long) == sizeof(int64_t));
    MPI_Request request = MPI_REQUEST_NULL;
    check_mpi(MPI_Iallreduce(MPI_IN_PLACE, values.data(), int(values.size()), MPI_LONG_LONG, MPI_MAX, comm_, &request),
              "MPI_Iallreduce");
    for (int done = 0, polls = 0;; ++polls) {
      check_mpi(MPI_Test(&request, &done, MPI_STATUS_IGNORE), "MPI_Test");
      if (done) break;
      if (polls > 64) std::this_thread::sleep_for(std::chrono::microseconds(polls > 1000 ? 1000 : 100));
    }
  }

  void broadcast(void* data, size_t bytes, int root) override {
    const size_t counts[1] = {bytes};
    check_mpi(MPI_Bcast(data, int_counts(counts, "broadcast")[0], MPI_BYTE, root, comm_), "MPI_Bcast");
  }

  std::shared_ptr<Communicator> split(int color, int key) const override {
    MPI_Comm part = MPI_COMM_NULL;
    check_mpi(MPI_Comm_split(comm_, color, key, &part), "MPI_Comm_split");
    return std::make_shared<MpiCommunicator>(part);
  }

 private:
  static constexpr int kTag = 0x7e1;
  void check_peers(size_t n, const char* what) const {
    require(n == size_t(size_), StatusCode::internal,
            std::string(what) + ": " + std::to_string(n) + " entries for " + std::to_string(size_) + " ranks");
  }
  MPI_Comm comm_;
  int rank_ = 0, size_ = 1;
};

std::shared_ptr<Communicator> duplicate(MPI_Comm comm) {
  MPI_Comm copy = MPI_COMM_NULL;
  check_mpi(MPI_Comm_dup(comm, &copy), "MPI_Comm_dup");
  return std::make_shared<MpiCommunicator>(copy);
}

}  // namespace

std::shared_ptr<Communicator> mpi_world() {
  ensure_initialised();
  return duplicate(MPI_COMM_WORLD);
}

std::shared_ptr<Communicator> mpi_communicator_from_handle(const void* handle, size_t handle_size) {
  require(handle != nullptr, StatusCode::invalid_argument, "mpi_communicator: null handle");
  require(handle_size == sizeof(MPI_Comm), StatusCode::invalid_argument,
          "mpi_communicator: an MPI_Comm of " + std::to_string(handle_size) + " bytes, but reel was built with an MPI "
              "whose MPI_Comm has " + std::to_string(sizeof(MPI_Comm)) + " (another MPI implementation)");
  int initialised = 0;
  MPI_Initialized(&initialised);
  require(initialised != 0, StatusCode::invalid_argument, "mpi_communicator: MPI is not initialised");
  MPI_Comm comm;
  std::memcpy(&comm, handle, sizeof comm);
  return duplicate(comm);
}

#else  // no MPI in this build

std::shared_ptr<Communicator> mpi_world() {
  throw Error(StatusCode::unsupported, "this reel was built without MPI (configure with REEL_MPI=ON and Open MPI's "
                                       "development files: apt install libopenmpi-dev)");
}

std::shared_ptr<Communicator> mpi_communicator_from_handle(const void*, size_t) { return mpi_world(); }

#endif

}  // namespace reel
