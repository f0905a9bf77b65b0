// An accounting GPU for memory plans: device memory labelled Device::cuda(0) that costs
// nothing until touched (anonymous mmap with MAP_NORESERVE), with exact books of what is live,
// and a backend whose device is cuda(0) and which does no arithmetic. Model code runs through
// its real paths and every device tensor goes through DeviceMemory::allocate, so the books
// show the allocation plan a GPU would see, at any size, in seconds, on any machine:
//   - the bytes asked for (live, peak);
//   - the same blocks rounded to reel's size classes: reel's own CachingAllocator
//     (lib/memory/caching_allocator.hpp) sits underneath, over mmap instead of cudaMalloc, so
//     its in-use and reserved (in use + cached) peaks are the ones the CUDA memory would report;
//   - optionally, the per-op scratch the CUDA backend takes from the same allocator (operand
//     dtype conversions, f32 accumulators; see AccountingBackendOptions::model_scratch).
// Not counted: what the CUDA backend takes outside its allocator (attention workspaces from
// cudaMallocAsync, cuBLAS/cuDNN handles' internal state), cuDNN convolution workspaces (chosen
// per algorithm at run time), the cuBLASLt workspace (32 MiB) and the CUDA context.
//
//   AccountingDevice& dev = AccountingDevice::install();   // registers for DeviceType::cuda
//   AccountingBackend be(dev);
//   dev.set_tag("step");
//   dev.reset_peak();
//   Tensor y = model.forward(be, x, t, text);              // instant: no arithmetic
//   const AccountingStats s = dev.stats();                 // s.peak_bytes, s.peak_class_bytes
//   for (const AccountedBlock& b : dev.blocks_at_peak(8)) std::printf("%s\n", b.what.c_str());
//
// Only for processes that do not use a real GPU: installing it replaces reel's CUDA memory.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "memory/caching_allocator.hpp"
#include "reel/backend.hpp"

namespace reel::bench {

struct AccountingStats {
  uint64_t live_bytes = 0, peak_bytes = 0;              // bytes asked for
  uint64_t live_class_bytes = 0, peak_class_bytes = 0;  // the live blocks rounded to size classes
  uint64_t peak_reserved_bytes = 0;  // the caching allocator's in use + cached: what it would hold from the driver
  uint64_t allocations = 0;          // since install()
  uint64_t live_blocks = 0;
};

// One live block: its allocation number, the bytes asked for, and what it holds: the tag at
// allocation time, then the first op that wrote it or "copied from the host".
struct AccountedBlock {
  uint64_t id = 0;
  uint64_t bytes = 0;
  std::string what;
};

class AccountingDevice final : public DeviceMemory {
 public:
  // Registers the accounting memory for DeviceType::cuda (after letting a real GPU's memory
  // register first, so that it cannot replace this one later) and returns it.
  static AccountingDevice& install();
  // Registers it again (after a test helper registered other memory for DeviceType::cuda).
  void make_current();

  std::shared_ptr<std::byte> allocate(Device device, size_t bytes) override;
  void copy(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) override;

  AccountingStats stats() const;
  // Peaks (and the blocks at the peak) start again from what is live now.
  void reset_peak();
  // Hands the caching allocator's free blocks back (reserved = in use again).
  void release_cached() { allocator_->release_cached(); }
  // Prefix of the names of blocks allocated from now on ("dit weights", "step", ...).
  void set_tag(std::string tag);
  // Names the live block that holds address p, unless it has a name already.
  void name_block(const void* p, std::string_view what);
  // The `top` largest blocks live at the raw peak since the last reset_peak(), largest first.
  std::vector<AccountedBlock> blocks_at_peak(size_t top) const;

 private:
  struct Live {
    uint64_t id;
    size_t bytes;
  };
  AccountingDevice();
  void release(std::byte* p) noexcept;
  std::string name_of_locked(uint64_t id) const;

  mutable std::mutex mutex_;
  std::unique_ptr<CachingAllocator> allocator_;  // over mmap: size classes and caching as on the GPU
  std::map<uintptr_t, Live> live_;               // by address, for naming a block from a view's pointer
  std::unordered_map<uint64_t, std::string> names_;
  std::vector<Live> at_peak_;
  std::string tag_ = "untagged";
  uint64_t next_id_ = 0, live_bytes_ = 0, peak_bytes_ = 0;
};

struct AccountingBackendOptions {
  // Also allocate, for the duration of each op, the scratch reel's CUDA backend takes from its
  // allocator for that op's dtypes: operands converted to the GEMM/convolution compute type
  // and f32 accumulators (cuda/backend/cuda_matmul.cpp, cuda_conv.cpp).
  bool model_scratch = true;
};

// A backend on cuda:0 that accepts every op whose tensors are all on cuda:0 and runs nothing
// (unless set_compute() gave it a backend to run the ops on, for checks). Counts the ops, keeps
// a trace of them (name and output shape) and names each op's output block in the device's books.
class AccountingBackend final : public Backend {
 public:
  explicit AccountingBackend(AccountingDevice& device, AccountingBackendOptions options = {});

  std::string_view name() const override { return "accounting_cuda"; }
  Device device() const override { return Device::cuda(0); }
  Support supports(const Op& op) const override;
  void execute(const Op& op) override;

  // Runs every op on `compute` as well (null: no arithmetic). Its device must be cuda:0.
  void set_compute(Backend* compute) { compute_ = compute; }
  const std::map<std::string, uint64_t>& op_counts() const { return counts_; }
  uint64_t op_count() const { return ops_; }
  // "linear -> [2, 192, 1536] bf16" for every op since the last clear().
  const std::vector<std::string>& trace() const { return trace_; }
  void clear();
  // The largest scratch (all blocks of one op) modelled since reset_max_scratch().
  uint64_t max_scratch_bytes() const { return max_scratch_; }
  void reset_max_scratch() { max_scratch_ = 0; }

 private:
  AccountingDevice& memory_;
  AccountingBackendOptions options_;
  Backend* compute_ = nullptr;
  std::map<std::string, uint64_t> counts_;
  std::vector<std::string> trace_;
  uint64_t ops_ = 0, max_scratch_ = 0;
};

// The sizes of the scratch blocks, in allocation order, that reel's CUDA backend takes for `op`
// (dtype conversions of GEMM and convolution operands, f32 accumulators): a mirror of
// cuda/backend/cuda_matmul.cpp and cuda_conv.cpp that assumes cuBLASLt finds an algorithm and
// cuDNN's first algorithm for the compute type runs; convolution workspaces are not included.
std::vector<size_t> cuda_scratch_bytes(const Op& op);

}  // namespace reel::bench
