#include "reel/tensor.hpp"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <string_view>

#include "parallel.hpp"

#ifdef REEL_HAVE_CUDA
namespace reel::cuda_memory {
void ensure_registered();  // cuda/cuda_memory.cpp
}
#endif

namespace reel {

// ---------------------------------------------------------------- Shape

namespace {
void check_dims(std::span<const int64_t> dims) {
  if (dims.size() > size_t(kMaxRank))
    throw Error(StatusCode::invalid_argument, "tensor rank " + std::to_string(dims.size()) + " exceeds the maximum of 5");
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d < 0) throw Error(StatusCode::invalid_argument, "negative tensor dimension " + std::to_string(d));
    if (d != 0 && n > (int64_t(1) << 62) / d)
      throw Error(StatusCode::invalid_argument, "tensor element count overflows (dimension " + std::to_string(d) + ")");
    n *= d;
  }
}
}  // namespace

Shape::Shape(std::initializer_list<int64_t> dims) : Shape(std::span<const int64_t>(dims.begin(), dims.size())) {}

Shape::Shape(std::span<const int64_t> dims) {
  check_dims(dims);
  rank_ = int(dims.size());
  for (int i = 0; i < rank_; ++i) dims_[i] = dims[i];
}

int64_t Shape::operator[](int i) const {
  const int j = i < 0 ? i + rank_ : i;
  if (j < 0 || j >= rank_)
    throw Error(StatusCode::invalid_argument, "dimension index " + std::to_string(i) + " out of range for shape " + str());
  return dims_[j];
}

int64_t Shape::numel() const {
  int64_t n = 1;
  for (int i = 0; i < rank_; ++i) n *= dims_[i];
  return n;
}

int64_t Shape::stride(int i) const {
  const int j = i < 0 ? i + rank_ : i;
  int64_t s = 1;
  for (int k = rank_ - 1; k > j; --k) s *= dims_[k];
  return s;
}

std::string Shape::str() const {
  std::string s = "[";
  for (int i = 0; i < rank_; ++i) {
    if (i) s += ", ";
    s += std::to_string(dims_[i]);
  }
  return s + "]";
}

// ---------------------------------------------------------------- Device

Device Device::parse(std::string_view text) {
  if (text == "cpu") return cpu();
  if (text == "cuda") return cuda(0);
  if (text.starts_with("cuda:") && text.size() > 5 && text.size() < 9) {
    int index = 0;
    for (char c : text.substr(5)) {
      if (c < '0' || c > '9') goto bad;
      index = index * 10 + (c - '0');
    }
    return cuda(index);
  }
bad:
  throw Error(StatusCode::invalid_argument, "unknown device '" + std::string(text) + "' (use cpu, cuda or cuda:N)");
}

std::string Device::str() const {
  return type == DeviceType::cpu ? "cpu" : "cuda:" + std::to_string(index);
}

// ---------------------------------------------------------------- memory

namespace {

// The first number on the line of `file` that starts with `key` ("" for the first line), or
// nothing. Small kernel files only (/proc, /sys).
std::optional<uint64_t> read_number(const char* file, std::string_view key) {
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.starts_with(key)) continue;
    const size_t at = line.find_first_of("0123456789", key.size());
    if (at == std::string::npos) return std::nullopt;  // e.g. cgroup's "max": no limit
    return std::strtoull(line.c_str() + at, nullptr, 10);
  }
  return std::nullopt;
}

// MemAvailable (kB) of /proc/meminfo, lowered to the cgroup v2 limit less its usage when the
// process runs under one (containers).
std::optional<size_t> host_available_bytes() {
  std::optional<uint64_t> bytes;
  if (auto kb = read_number("/proc/meminfo", "MemAvailable:")) bytes = *kb * 1024;
  const auto limit = read_number("/sys/fs/cgroup/memory.max", "");
  const auto used = read_number("/sys/fs/cgroup/memory.current", "");
  if (limit && used) {
    const uint64_t left = *limit > *used ? *limit - *used : 0;
    bytes = bytes ? std::min(*bytes, left) : left;
  }
  if (!bytes) return std::nullopt;
  return size_t(*bytes);
}

class HostMemory final : public DeviceMemory {
 public:
  std::shared_ptr<std::byte> allocate(Device, size_t bytes) override {
    const size_t rounded = (std::max<size_t>(bytes, 1) + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, rounded);
    if (!p) throw Error(StatusCode::out_of_memory, "cannot allocate " + std::to_string(bytes) + " bytes of host memory");
    return std::shared_ptr<std::byte>(static_cast<std::byte*>(p), [](std::byte* q) { std::free(q); });
  }
  void copy(void* dst, Device, const void* src, Device, size_t bytes) override {
    if (bytes) std::memcpy(dst, src, bytes);
  }
  std::optional<size_t> available_bytes(Device) const override { return host_available_bytes(); }
};

HostMemory host_memory;
std::mutex registry_mutex;
DeviceMemory* registry[2] = {&host_memory, nullptr};

}  // namespace

void register_device_memory(DeviceType type, DeviceMemory* memory) {
  std::lock_guard lock(registry_mutex);
  registry[int(type)] = memory;
}

DeviceMemory& device_memory(DeviceType type) {
#ifdef REEL_HAVE_CUDA
  // The CUDA memory registers itself on first use (outside the lock: registering takes it).
  if (type == DeviceType::cuda) cuda_memory::ensure_registered();
#endif
  std::lock_guard lock(registry_mutex);
  DeviceMemory* m = registry[int(type)];
  if (!m) throw Error(StatusCode::unsupported, "no CUDA backend is available (not built, or no GPU was initialised)");
  return *m;
}

// ---------------------------------------------------------------- Tensor

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  Tensor t;
  t.shape_ = shape;
  t.dtype_ = dtype;
  t.device_ = device;
  t.defined_ = true;
  const int64_t n = shape.numel();
  if (n > std::numeric_limits<int64_t>::max() / 8)
    throw Error(StatusCode::invalid_argument, "tensor " + shape.str() + " is too large");
  t.buffer_ = device_memory(device.type).allocate(device, t.nbytes());
  t.data_ = t.buffer_.get();
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  if (device.type == DeviceType::cpu) {
    Tensor t = empty(shape, dtype, device);
    std::memset(t.data_, 0, t.nbytes());
    return t;
  }
  Tensor host = zeros(shape, dtype);
  return host.to(device);
}

Tensor Tensor::wrap(const Shape& shape, DType dtype, std::shared_ptr<const void> owner, const void* data,
                    Device device) {
  Tensor t;
  t.shape_ = shape;
  t.dtype_ = dtype;
  t.device_ = device;
  t.defined_ = true;
  t.read_only_ = true;
  // The aliasing constructor keeps `owner` alive while exposing `data`.
  t.buffer_ = std::shared_ptr<std::byte>(std::const_pointer_cast<void>(owner),
                                         static_cast<std::byte*>(const_cast<void*>(data)));
  t.data_ = t.buffer_.get();
  return t;
}

Tensor Tensor::from_floats(const Shape& shape, std::span<const float> values, DType dtype) {
  require(int64_t(values.size()) == shape.numel(), StatusCode::invalid_argument,
          "from_floats: " + std::to_string(values.size()) + " values for shape " + shape.str());
  Tensor t = empty(shape, dtype);
  convert_elements(values.data(), DType::f32, t.data_, dtype, values.size());
  return t;
}

void* Tensor::raw() {
  require(!read_only_, StatusCode::invalid_argument, "tensor is read-only (memory-mapped weights)");
  return data_;
}

void Tensor::check_host(DType want) const {
  require(defined_, StatusCode::invalid_argument, "tensor is undefined");
  require(is_cpu(), StatusCode::invalid_argument, "tensor data is on " + device_.str() + ", not on the CPU");
  require(dtype_ == want, StatusCode::invalid_argument,
          "tensor holds " + std::string(dtype_name(dtype_)) + ", accessed as " + std::string(dtype_name(want)));
}

Tensor Tensor::reshape(const Shape& shape) const {
  require(shape.numel() == numel(), StatusCode::invalid_argument,
          "cannot reshape " + shape_.str() + " to " + shape.str());
  Tensor t = *this;
  t.shape_ = shape;
  return t;
}

Tensor Tensor::slice(int64_t begin, int64_t end) const {
  require(rank() >= 1, StatusCode::invalid_argument, "cannot slice a scalar");
  require(0 <= begin && begin <= end && end <= dim(0), StatusCode::invalid_argument,
          "slice [" + std::to_string(begin) + ", " + std::to_string(end) + ") out of range for " + shape_.str());
  Tensor t = *this;
  std::array<int64_t, kMaxRank> d{};
  for (int i = 0; i < rank(); ++i) d[i] = shape_[i];
  d[0] = end - begin;
  t.shape_ = Shape(std::span<const int64_t>(d.data(), size_t(rank())));
  const size_t offset = size_t(begin) * size_t(shape_.stride(0)) * dtype_size(dtype_);
  t.buffer_ = std::shared_ptr<std::byte>(buffer_, data_ + offset);
  t.data_ = t.buffer_.get();
  return t;
}

Tensor Tensor::select(int64_t index) const {
  Tensor t = slice(index, index + 1);
  auto dims = shape_.dims().subspan(1);
  t.shape_ = Shape(dims);
  return t;
}

Tensor Tensor::to(DType dtype) const {
  require(is_cpu(), StatusCode::invalid_argument, "Tensor::to(DType) converts CPU tensors; use ops::convert on " + device_.str());
  Tensor t = empty(shape_, dtype);
  convert_elements(data_, dtype_, t.data_, dtype, size_t(numel()));
  return t;
}

Tensor Tensor::to(Device device) const {
  if (defined_ && device == device_) return *this;
  Tensor t = empty(shape_, dtype_, device);
  t.copy_from(*this);
  return t;
}

Tensor Tensor::clone() const {
  Tensor t = empty(shape_, dtype_, device_);
  t.copy_from(*this);
  return t;
}

void Tensor::copy_from(const Tensor& src) {
  require(defined_ && src.defined_, StatusCode::invalid_argument, "copy_from: undefined tensor");
  require(!read_only_, StatusCode::invalid_argument, "copy_from: destination is read-only");
  require(src.shape_ == shape_ && src.dtype_ == dtype_, StatusCode::invalid_argument,
          "copy_from: " + src.shape_.str() + " " + std::string(dtype_name(src.dtype_)) + " into " + shape_.str() + " " +
              std::string(dtype_name(dtype_)));
  const DeviceType t = device_.type != DeviceType::cpu ? device_.type : src.device_.type;
  device_memory(t).copy(data_, device_, src.data_, src.device_, nbytes());
}

std::vector<float> Tensor::to_floats() const {
  require(is_cpu(), StatusCode::invalid_argument, "to_floats needs a CPU tensor");
  std::vector<float> v(static_cast<size_t>(numel()));
  convert_elements(data_, dtype_, v.data(), DType::f32, v.size());
  return v;
}

// ---------------------------------------------------------------- conversions

void convert_elements(const void* src, DType st, void* dst, DType dt, size_t n) {
  if (n == 0) return;  // empty tensors may have null data pointers
  if (st == dt) {
    std::memcpy(dst, src, n * dtype_size(st));
    return;
  }
  require(st != DType::i32 && dt != DType::i32, StatusCode::unsupported, "i32 tensors convert only to i32");
  auto load = [&](size_t i) -> float {
    switch (st) {
      case DType::f32: return static_cast<const float*>(src)[i];
      case DType::bf16: return static_cast<const bf16*>(src)[i].to_float();
      case DType::f16: return static_cast<const f16*>(src)[i].to_float();
      default: return 0.0f;
    }
  };
  parallel_for(int64_t(n), 1 << 16, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const float v = load(size_t(i));
      switch (dt) {
        case DType::f32: static_cast<float*>(dst)[i] = v; break;
        case DType::bf16: static_cast<bf16*>(dst)[i] = bf16::from_float(v); break;
        case DType::f16: static_cast<f16*>(dst)[i] = f16::from_float(v); break;
        default: break;
      }
    }
  });
}

}  // namespace reel
