// The CUDA backend: one table that gives, per op, the supports() check and the function that
// execute() runs (as the CPU backend's), the stream and its ordering against reel's memory
// stream, and make_cuda_backend / cuda_stream.
#include <array>
#include <mutex>
#include <new>
#include <string>
#include <utility>
#include <variant>

#include "backend/cuda_ops.hpp"
#include "cuda_check.hpp"
#include "cuda_memory.hpp"
#include "reel/cuda_backend.hpp"

namespace reel {

namespace cuda {

namespace {

struct OpEntry {
  Support (*supports)(const Op&, Device);
  void (*execute)(const Op&, CudaContext&);
};

template <class T>
constexpr OpEntry entry() {
  return {[](const Op& op, Device d) { return cuda::supports(std::get<T>(op), d); },
          [](const Op& op, CudaContext& ctx) { cuda::execute(std::get<T>(op), ctx); }};
}

template <size_t... I>
constexpr std::array<OpEntry, sizeof...(I)> make_table(std::index_sequence<I...>) {
  return {entry<std::variant_alternative_t<I, Op>>()...};
}

// Indexed by Op::index(): entry i handles the i-th alternative of reel::Op.
constexpr auto kTable = make_table(std::make_index_sequence<std::variant_size_v<Op>>());

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(const CudaBackendOptions& options) : index_(options.device) {
    int count = 0;
    const cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
      (void)cudaGetLastError();
      throw Error(StatusCode::unsupported, std::string("make_cuda_backend: no usable CUDA GPU (cudaGetDeviceCount: ") +
                                               cudaGetErrorString(err) + ")");
    }
    if (count == 0) throw Error(StatusCode::unsupported, "make_cuda_backend: no CUDA GPU on this machine");
    if (options.device < 0 || options.device >= count)
      throw Error(StatusCode::invalid_argument, "make_cuda_backend: CUDA device " + std::to_string(options.device) +
                                                    " does not exist (" + std::to_string(count) + " found)");
    {
      DeviceGuard guard(index_);
      int major = 0, minor = 0;
      REEL_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, index_));
      REEL_CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, index_));
      const std::string cc = std::to_string(major) + "." + std::to_string(minor);
      if (major < 8)
        throw Error(StatusCode::unsupported, "make_cuda_backend: CUDA device " + std::to_string(index_) +
                                                 " has compute capability " + cc + "; reel needs 8.0 or newer (bf16)");
      if (const cudaError_t err = probe_kernel_image(); err != cudaSuccess)
        throw Error(StatusCode::unsupported,
                    "make_cuda_backend: this reel build has no kernels for CUDA device " + std::to_string(index_) +
                        " (compute capability " + cc + "): " + cudaGetErrorString(err) +
                        "; rebuild with -DREEL_CUDA_ARCHITECTURES including " + std::to_string(major * 10 + minor));
    }
    cuda_memory::ensure_registered();
    reel_stream_ = cuda_memory::stream(index_);
    stream_ = options.stream ? static_cast<cudaStream_t>(options.stream) : reel_stream_;
    if (stream_ != reel_stream_) {
      DeviceGuard guard(index_);
      REEL_CUDA_CHECK(cudaEventCreateWithFlags(&reel_done_, cudaEventDisableTiming));
      REEL_CUDA_CHECK(cudaEventCreateWithFlags(&caller_done_, cudaEventDisableTiming));
    }
    ctx_ = std::make_unique<CudaContext>(index_, stream_, options.allow_tf32);
  }

  ~CudaBackend() override {
    ctx_.reset();  // waits for the stream
    if (reel_done_) (void)cudaEventDestroy(reel_done_);
    if (caller_done_) (void)cudaEventDestroy(caller_done_);
  }

  std::string_view name() const override { return "cuda"; }
  Device device() const override { return Device::cuda(index_); }

  Support supports(const Op& op) const override { return kTable[op.index()].supports(op, device()); }

  void execute(const Op& op) override {
    std::lock_guard lock(mutex_);
    DeviceGuard guard(index_);
    if (stream_ != reel_stream_) {  // the caller's stream starts after everything queued on reel's
      REEL_CUDA_CHECK(cudaEventRecord(reel_done_, reel_stream_));
      REEL_CUDA_CHECK(cudaStreamWaitEvent(stream_, reel_done_, 0));
    }
    struct EndOp {  // also when the op throws half way: order reel's stream behind what was queued
      CudaBackend& be;
      ~EndOp() {
        if (be.stream_ != be.reel_stream_) {
          (void)cudaEventRecord(be.caller_done_, be.stream_);
          (void)cudaStreamWaitEvent(be.reel_stream_, be.caller_done_, 0);
        }
        be.ctx_->end_op();
      }
    } end_op{*this};
    try {
      kTable[op.index()].execute(op, *ctx_);
    } catch (const Error&) {
      throw;
    } catch (const std::bad_alloc&) {
      throw Error(StatusCode::out_of_memory, std::string(op_name(op)) + ": out of host memory");
    }
  }

  void synchronize() override {
    DeviceGuard guard(index_);
    REEL_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  cudaStream_t stream() const { return stream_; }

 private:
  int index_;
  cudaStream_t reel_stream_ = nullptr;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t reel_done_ = nullptr, caller_done_ = nullptr;
  std::mutex mutex_;
  std::unique_ptr<CudaContext> ctx_;
};

}  // namespace

}  // namespace cuda

std::unique_ptr<Backend> make_cuda_backend(const CudaBackendOptions& options) {
  return std::make_unique<cuda::CudaBackend>(options);
}

void* cuda_stream(const Backend& backend) noexcept {
  const auto* be = dynamic_cast<const cuda::CudaBackend*>(&backend);
  return be ? static_cast<void*>(be->stream()) : nullptr;
}

}  // namespace reel
