// The CPU backend: one table that gives, per op, the supports() check and the kernel that
// execute() runs, so the two can never disagree; plus the thread-count scope and the shared
// oneDNN context.
#include <oneapi/dnnl/dnnl.hpp>
#include <thread>

#include "cpu/cpu_backend.hpp"
#include "cpu/cpu_kernels.hpp"

namespace reel {

namespace cpu {

CpuContext::CpuContext(bool native_low_precision)
    : engine_(std::make_unique<dnnl::engine>(dnnl::engine::kind::cpu, 0)),
      native_low_precision_(native_low_precision) {}
CpuContext::~CpuContext() = default;

std::shared_ptr<void> CpuContext::cached(const std::string& key, const std::function<std::shared_ptr<void>()>& make) {
  {
    std::lock_guard lock(mutex_);
    if (auto it = cache_.find(key); it != cache_.end()) return it->second;
  }
  std::shared_ptr<void> value = make();  // built outside the lock: primitive creation can be slow
  std::lock_guard lock(mutex_);
  if (cache_.size() >= 1024) cache_.clear();  // bound memory for workloads with many shapes
  return cache_.emplace(key, std::move(value)).first->second;
}

namespace {

struct OpEntry {
  Support (*supports)(const Op&);
  void (*execute)(const Op&, CpuContext&);
};

template <class T>
constexpr OpEntry entry() {
  return {[](const Op& op) { return cpu::supports(std::get<T>(op)); },
          [](const Op& op, CpuContext& ctx) { cpu::execute(std::get<T>(op), ctx); }};
}

template <size_t... I>
constexpr std::array<OpEntry, sizeof...(I)> make_table(std::index_sequence<I...>) {
  return {entry<std::variant_alternative_t<I, Op>>()...};
}

// Indexed by Op::index(): entry i handles the i-th alternative of reel::Op.
constexpr auto kTable = make_table(std::make_index_sequence<std::variant_size_v<Op>>());

// Applies the backend's thread count on the calling thread while an op runs (reel's loops and
// oneDNN's OpenMP regions both follow it), then restores the caller's setting.
class ThreadScope {
 public:
  explicit ThreadScope(int threads) : previous_(num_threads()) { set_num_threads(threads); }
  ~ThreadScope() { set_num_threads(previous_); }
  ThreadScope(const ThreadScope&) = delete;
  ThreadScope& operator=(const ThreadScope&) = delete;

 private:
  int previous_;
};

class CpuBackend final : public Backend {
 public:
  CpuBackend(const CpuBackendOptions& options, bool native_low_precision)
      : threads_(options.threads), ctx_(native_low_precision) {
    check_thread_count(options.threads, "CpuBackendOptions::threads");
    if (threads_ == 0) threads_ = std::max(1u, std::thread::hardware_concurrency());
  }

  std::string_view name() const override { return "cpu"; }
  Device device() const override { return Device::cpu(); }

  Support supports(const Op& op) const override { return kTable[op.index()].supports(op); }

  void execute(const Op& op) override {
    ThreadScope scope(threads_);
    try {
      kTable[op.index()].execute(op, ctx_);
    } catch (const Error&) {
      throw;
    } catch (const dnnl::error& e) {
      throw Error(StatusCode::internal, std::string(op_name(op)) + ": oneDNN failed: " + e.what());
    } catch (const std::bad_alloc&) {
      throw Error(StatusCode::out_of_memory, std::string(op_name(op)) + ": out of memory");
    }
  }

 private:
  int threads_;
  CpuContext ctx_;
};

// Without AMX, oneDNN 2.x's bf16 GEMM and convolution kernels (avx512_core_bf16) run at about
// half the rate of its f32 kernels on the same cores (measured: 83 vs 147 GFLOP/s per core for
// a 2048³ GEMM, 115 vs 215 for a VAE 3×3×3 convolution), so bf16 operands are widened to f32
// there; with AMX the bf16 tiles are far faster than f32 and the native kernels are used.
bool cpu_has_amx() {
  const auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
  const auto amx = static_cast<unsigned>(dnnl::cpu_isa::avx512_core_amx);
  return (isa & amx) == amx;
}

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(const CpuBackendOptions& options, LowPrecisionCompute compute) {
  const bool native = compute == LowPrecisionCompute::native ||
                      (compute == LowPrecisionCompute::automatic && cpu_has_amx());
  return std::make_unique<CpuBackend>(options, native);
}

}  // namespace cpu

std::unique_ptr<Backend> make_cpu_backend(const CpuBackendOptions& options) {
  return cpu::make_cpu_backend(options, cpu::LowPrecisionCompute::automatic);
}

}  // namespace reel
