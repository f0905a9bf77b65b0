// The accounting GPU (see accounting_device.hpp): mmap'd blocks under reel's caching allocator,
// exact books of the bytes asked for, and a backend that only counts and names.
#include "common/accounting_device.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <cstring>

#include "tests/common/emulated_device.hpp"  // EmulatedDeviceBackend::for_each_tensor: every tensor slot of an op

namespace reel::bench {

namespace {

// Blocks that cost nothing until touched: anonymous, private, no swap reserved.
class MmapMemory final : public RawMemory {
 public:
  void* allocate(size_t bytes) override {
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? nullptr : p;  // nullptr: the allocator empties its cache, retries, then throws
  }
  void release(void* p, size_t bytes) noexcept override { (void)::munmap(p, bytes); }
};

std::string describe(const Tensor& t) { return t.shape().str() + " " + std::string(dtype_name(t.dtype())); }

// The tensor an op writes.
const Tensor* output_of(const Op& op) {
  const Tensor* out = nullptr;
  test::EmulatedDeviceBackend::for_each_tensor(op, [&](const Tensor* t, const char* role) {
    if (std::strcmp(role, "out") == 0) out = t;
  });
  return out;
}

// cuda_matmul.cpp's linear_compute_type: the operands' common type; bf16 for f32 activations
// with bf16 weights; f32 for any other mix.
DType linear_compute_type(DType x, DType w) {
  if (x == w) return x;
  if (x == DType::f32 && w == DType::bf16) return DType::bf16;
  return DType::f32;
}

size_t bytes_as(const Tensor& t, DType type) { return size_t(t.numel()) * dtype_size(type); }

// cuda_matmul.cpp's gemm_to_output: a widened bias when out is f32 and the bias is not, and an
// f32 accumulator when out cannot be written directly with the bias in the epilogue.
void gemm_output_scratch(DType ab, const Tensor& out, const Tensor* bias, int64_t m, int64_t columns,
                         std::vector<size_t>& scratch) {
  const DType out_t = out.dtype();
  DType bias_t = bias ? bias->dtype() : out_t;
  if (bias && out_t == DType::f32 && bias_t != DType::f32) {
    scratch.push_back(size_t(m) * 4);
    bias_t = DType::f32;
  }
  const bool direct = out_t == ab || out_t == DType::f32;
  if (direct && (!bias || bias_t == out_t)) return;
  scratch.push_back(size_t(m) * size_t(columns) * 4);
}

}  // namespace

// ---------------------------------------------------------------- the device

AccountingDevice::AccountingDevice() : allocator_(std::make_unique<CachingAllocator>(std::make_unique<MmapMemory>())) {}

AccountingDevice& AccountingDevice::install() {
  static AccountingDevice* device = [] {
    (void)cuda_device_count();
    try {
      (void)device_memory(DeviceType::cuda);  // a real GPU registers its memory now, once
    } catch (const Error&) {
    }
    auto* d = new AccountingDevice();  // never freed: tensors may outlive static destructors
    register_device_memory(DeviceType::cuda, d);
    return d;
  }();
  return *device;
}

void AccountingDevice::make_current() { register_device_memory(DeviceType::cuda, this); }

std::shared_ptr<std::byte> AccountingDevice::allocate(Device device, size_t bytes) {
  if (device.type != DeviceType::cuda || device.index != 0)
    throw Error(StatusCode::invalid_argument, "accounting device: only cuda:0 exists, not " + device.str());
  auto* p = static_cast<std::byte*>(allocator_->allocate(bytes));  // throws out_of_memory when mmap refuses
  // If a step below throws, `block` (or the shared_ptr constructor itself) hands p back.
  std::shared_ptr<std::byte> block(p, [this](std::byte* q) { release(q); });
  std::lock_guard lock(mutex_);
  const uint64_t id = next_id_++;
  names_.emplace(id, tag_ + ": ");
  live_.emplace(reinterpret_cast<uintptr_t>(p), Live{id, bytes});
  live_bytes_ += bytes;
  if (live_bytes_ > peak_bytes_) {
    peak_bytes_ = live_bytes_;
    at_peak_.clear();
    for (const auto& [address, live] : live_) at_peak_.push_back(live);
  }
  return block;
}

void AccountingDevice::release(std::byte* p) noexcept {
  {
    std::lock_guard lock(mutex_);
    if (auto it = live_.find(reinterpret_cast<uintptr_t>(p)); it != live_.end()) {
      live_bytes_ -= it->second.bytes;
      live_.erase(it);
    }
  }
  allocator_->free(p);
}

void AccountingDevice::copy(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) {
  if (bytes == 0) return;
  std::memmove(dst, src, bytes);
  if (dst_device.type == DeviceType::cuda)
    name_block(dst, src_device.type == DeviceType::cuda ? "copied on the device" : "copied from the host");
}

AccountingStats AccountingDevice::stats() const {
  const CachingAllocatorStats a = allocator_->stats();
  std::lock_guard lock(mutex_);
  AccountingStats s;
  s.live_bytes = live_bytes_;
  s.peak_bytes = peak_bytes_;
  s.live_class_bytes = a.in_use_bytes;
  s.peak_class_bytes = a.peak_in_use_bytes;
  s.peak_reserved_bytes = a.peak_reserved_bytes;
  s.allocations = next_id_;
  s.live_blocks = live_.size();
  return s;
}

void AccountingDevice::reset_peak() {
  allocator_->reset_peak();
  std::lock_guard lock(mutex_);
  peak_bytes_ = live_bytes_;
  at_peak_.clear();
  for (const auto& [address, block] : live_) at_peak_.push_back(block);
}

void AccountingDevice::set_tag(std::string tag) {
  std::lock_guard lock(mutex_);
  tag_ = std::move(tag);
}

void AccountingDevice::name_block(const void* p, std::string_view what) {
  const auto address = reinterpret_cast<uintptr_t>(p);
  std::lock_guard lock(mutex_);
  auto it = live_.upper_bound(address);
  if (it == live_.begin()) return;
  --it;
  if (address >= it->first + std::max<size_t>(it->second.bytes, 1)) return;  // not inside a live block
  std::string& name = names_[it->second.id];
  if (!name.empty() && name.back() == ' ') name += what;  // "tag: " has no description yet
}

std::string AccountingDevice::name_of_locked(uint64_t id) const {
  const auto it = names_.find(id);
  if (it == names_.end()) return "?";
  return it->second.back() == ' ' ? it->second + "(no op wrote it)" : it->second;
}

std::vector<AccountedBlock> AccountingDevice::blocks_at_peak(size_t top) const {
  std::lock_guard lock(mutex_);
  std::vector<Live> blocks = at_peak_;
  std::stable_sort(blocks.begin(), blocks.end(), [](const Live& a, const Live& b) { return a.bytes > b.bytes; });
  if (blocks.size() > top) blocks.resize(top);
  std::vector<AccountedBlock> out;
  for (const Live& b : blocks) out.push_back({b.id, b.bytes, name_of_locked(b.id)});
  return out;
}

// ---------------------------------------------------------------- the backend

AccountingBackend::AccountingBackend(AccountingDevice& device, AccountingBackendOptions options)
    : memory_(device), options_(options) {}

Support AccountingBackend::supports(const Op& op) const {
  Support result = Support::yes();
  test::EmulatedDeviceBackend::for_each_tensor(op, [&](const Tensor* t, const char* role) {
    if (result && t && t->defined() && !(t->device() == device()))
      result = Support::no(std::string(role) + " is on " + t->device().str() + "; this backend runs on cuda:0");
  });
  if (result && compute_) return compute_->supports(op);
  return result;
}

void AccountingBackend::execute(const Op& op) {
  const std::string name(op_name(op));
  ++ops_;
  ++counts_[name];
  const Tensor* out = output_of(op);
  const std::string written = out ? name + " -> " + describe(*out) : name;
  trace_.push_back(written);
  if (out && out->numel() > 0) memory_.name_block(out->raw(), written);
  std::vector<std::shared_ptr<std::byte>> scratch;  // held for the op, as CudaContext::scratch until end_op()
  if (options_.model_scratch) {
    uint64_t total = 0;
    for (size_t bytes : cuda_scratch_bytes(op)) {
      scratch.push_back(device_memory(DeviceType::cuda).allocate(device(), bytes));  // the registered memory
      memory_.name_block(scratch.back().get(), "scratch of " + written);
      total += bytes;
    }
    max_scratch_ = std::max(max_scratch_, total);
  }
  if (compute_) compute_->execute(op);
}

void AccountingBackend::clear() {
  counts_.clear();
  trace_.clear();
  ops_ = 0;
}

// ---------------------------------------------------------------- the CUDA backend's scratch

std::vector<size_t> cuda_scratch_bytes(const Op& op) {
  std::vector<size_t> scratch;
  std::visit(
      [&](const auto& o) {
        using T = std::decay_t<decltype(o)>;
        if constexpr (std::is_same_v<T, op::Linear>) {  // cuda_matmul.cpp: execute(op::Linear)
          const Tensor &x = *o.x, &w = *o.weight;
          const int64_t k = w.dim(1), n = w.dim(0);
          if (o.out->numel() == 0 || k == 0) return;
          const DType ct = linear_compute_type(x.dtype(), w.dtype());
          if (w.dtype() != ct) scratch.push_back(bytes_as(w, ct));
          if (x.dtype() != ct) scratch.push_back(bytes_as(x, ct));
          gemm_output_scratch(ct, *o.out, o.bias, n, o.out->numel() / n, scratch);
        } else if constexpr (std::is_same_v<T, op::BatchMatMul>) {  // execute(op::BatchMatMul)
          const int64_t batch = o.a->dim(0), m = o.a->dim(1), k = o.a->dim(2), n = o.out->dim(2);
          if (o.out->numel() == 0 || k == 0) return;
          gemm_output_scratch(o.a->dtype(), *o.out, nullptr, n, batch * m, scratch);
        } else if constexpr (std::is_same_v<T, op::Conv3d> ||
                             std::is_same_v<T, op::Conv2d>) {  // cuda_conv.cpp: run_conv
          const Tensor &x = *o.x, &w = *o.weight, &out = *o.out;
          if (out.numel() == 0 || x.numel() == 0 || w.numel() == 0) return;
          const DType ct = (x.dtype() == w.dtype() && out.dtype() == x.dtype()) ? x.dtype() : DType::f32;
          if (x.dtype() != ct) scratch.push_back(bytes_as(x, ct));
          if (w.dtype() != ct) scratch.push_back(bytes_as(w, ct));
          if (out.dtype() != ct) scratch.push_back(bytes_as(out, ct));
        }
      },
      op);
  return scratch;
}

}  // namespace reel::bench
