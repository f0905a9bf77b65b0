// The NCCL Communicator (REEL_NCCL): GPU ranks. Data collectives run as NCCL grouped
// send/receive on reel's stream of the rank's device, so they are ordered with the ops that
// wrote and will read the buffers without a synchronisation; host-side control (agreement,
// broadcasts, splitting) goes through the bootstrap communicator (MPI), which also carries
// NCCL's unique id.
#ifdef REEL_HAVE_NCCL
#include <nccl.h>

#include <string>
#include <vector>

#include "cuda_check.hpp"
#include "cuda_memory.hpp"
#include "reel/distributed.hpp"
#include "reel/status.hpp"

namespace reel {

namespace {

void check_nccl(ncclResult_t rc, const char* what) {
  if (rc == ncclSuccess) return;
  throw Error(rc == ncclSystemError ? StatusCode::io_error : StatusCode::internal,
              std::string("NCCL ") + what + " failed: " + ncclGetErrorString(rc));
}

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(ncclComm_t comm, int device, std::shared_ptr<Communicator> bootstrap)
      : comm_(comm), device_(device), bootstrap_(std::move(bootstrap)) {
    check_nccl(ncclCommUserRank(comm_, &rank_), "ncclCommUserRank");
    check_nccl(ncclCommCount(comm_, &size_), "ncclCommCount");
  }
  ~NcclCommunicator() override { ncclCommDestroy(comm_); }

  std::string_view transport() const override { return "nccl"; }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  Device buffer_device() const override { return Device::cuda(device_); }

  void all_to_all(const void* send, std::span<const size_t> send_bytes, void* recv,
                  std::span<const size_t> recv_bytes) override {
    cuda::DeviceGuard guard(device_);
    const cudaStream_t s = cuda_memory::stream(device_);
    size_t so = 0, ro = 0;
    check_nccl(ncclGroupStart(), "ncclGroupStart");
    for (int peer = 0; peer < size_; ++peer) {
      if (send_bytes[size_t(peer)])
        check_nccl(ncclSend(static_cast<const std::byte*>(send) + so, send_bytes[size_t(peer)], ncclUint8, peer, comm_, s),
                   "ncclSend");
      if (recv_bytes[size_t(peer)])
        check_nccl(ncclRecv(static_cast<std::byte*>(recv) + ro, recv_bytes[size_t(peer)], ncclUint8, peer, comm_, s),
                   "ncclRecv");
      so += send_bytes[size_t(peer)], ro += recv_bytes[size_t(peer)];
    }
    check_nccl(ncclGroupEnd(), "ncclGroupEnd (all_to_all)");
  }

  void all_gather(const void* send, size_t bytes, void* recv, std::span<const size_t> recv_bytes) override {
    all_to_all_repeat(send, bytes, recv, recv_bytes);
  }

  void send_recv(const void* send, size_t send_bytes, int dest, void* recv, size_t recv_bytes, int source) override {
    cuda::DeviceGuard guard(device_);
    const cudaStream_t s = cuda_memory::stream(device_);
    check_nccl(ncclGroupStart(), "ncclGroupStart");
    check_nccl(ncclSend(send, send_bytes, ncclUint8, dest, comm_, s), "ncclSend");
    check_nccl(ncclRecv(recv, recv_bytes, ncclUint8, source, comm_, s), "ncclRecv");
    check_nccl(ncclGroupEnd(), "ncclGroupEnd (send_recv)");
  }

  void all_reduce_max(std::span<int64_t> values) override { bootstrap_->all_reduce_max(values); }
  void broadcast(void* data, size_t bytes, int root) override { bootstrap_->broadcast(data, bytes, root); }

  std::shared_ptr<Communicator> split(int color, int key) const override {
    std::shared_ptr<Communicator> part = bootstrap_->split(color, key);
    ncclComm_t comm = nullptr;
    check_nccl(ncclCommSplit(comm_, color, key, &comm, nullptr), "ncclCommSplit");
    return std::make_shared<NcclCommunicator>(comm, device_, std::move(part));
  }

 private:
  // Every peer gets the same `bytes` of send (an all-gather as grouped sends and receives).
  void all_to_all_repeat(const void* send, size_t bytes, void* recv, std::span<const size_t> recv_bytes) {
    cuda::DeviceGuard guard(device_);
    const cudaStream_t s = cuda_memory::stream(device_);
    size_t ro = 0;
    check_nccl(ncclGroupStart(), "ncclGroupStart");
    for (int peer = 0; peer < size_; ++peer) {
      if (bytes) check_nccl(ncclSend(send, bytes, ncclUint8, peer, comm_, s), "ncclSend");
      if (recv_bytes[size_t(peer)])
        check_nccl(ncclRecv(static_cast<std::byte*>(recv) + ro, recv_bytes[size_t(peer)], ncclUint8, peer, comm_, s),
                   "ncclRecv");
      ro += recv_bytes[size_t(peer)];
    }
    check_nccl(ncclGroupEnd(), "ncclGroupEnd (all_gather)");
  }

  ncclComm_t comm_;
  int device_;
  std::shared_ptr<Communicator> bootstrap_;
  int rank_ = 0, size_ = 1;
};

}  // namespace

bool nccl_built() noexcept { return true; }

std::shared_ptr<Communicator> nccl_communicator(std::shared_ptr<Communicator> bootstrap, int device) {
  require(bootstrap != nullptr, StatusCode::invalid_argument, "nccl_communicator: no bootstrap communicator");
  int count = 0;
  cuda::check(cudaGetDeviceCount(&count), "cudaGetDeviceCount");
  require(device >= 0 && device < count, StatusCode::invalid_argument,
          "nccl_communicator: CUDA device " + std::to_string(device) + " does not exist (" + std::to_string(count) +
              " devices)");
  ncclUniqueId id{};
  if (bootstrap->rank() == 0) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
  bootstrap->broadcast(&id, sizeof id, 0);
  cuda::DeviceGuard guard(device);
  ncclComm_t comm = nullptr;
  check_nccl(ncclCommInitRank(&comm, bootstrap->size(), id, bootstrap->rank()), "ncclCommInitRank");
  return std::make_shared<NcclCommunicator>(comm, device, std::move(bootstrap));
}

}  // namespace reel
#endif  // REEL_HAVE_NCCL
