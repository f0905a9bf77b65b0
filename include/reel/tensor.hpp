// Tensor: a shape (up to 5 dims), an element type, a device and a reference-counted buffer.
//
// Contiguous row-major, no autograd, no graph. Views along the outermost dimension
// (slice/select) and reshapes share the buffer; everything else copies.
//
//   auto x = reel::Tensor::empty({2, 16, 5, 8, 8}, reel::DType::f32);   // CPU
//   float* p = x.data<float>();
//   reel::Tensor first = x.select(0);                                    // [16, 5, 8, 8] view
//   reel::Tensor tokens = first.reshape({16, 5 * 8 * 8});                // view
//   reel::Tensor half = x.to(reel::DType::bf16);                         // converted copy
//   reel::Tensor on_gpu = x.to(reel::Device::cuda(0));                   // needs the CUDA backend
#pragma once
#include <array>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "reel/dtype.hpp"
#include "reel/export.hpp"
#include "reel/status.hpp"

namespace reel {

inline constexpr int kMaxRank = 5;

// A validated shape: rank <= 5, every dimension >= 0, element count fits in 62 bits.
class REEL_API Shape {
 public:
  Shape() = default;  // rank 0: a scalar with one element
  Shape(std::initializer_list<int64_t> dims);
  explicit Shape(std::span<const int64_t> dims);

  int rank() const { return rank_; }
  // i may be negative (-1 is the last dimension). Out of range throws invalid_argument.
  int64_t operator[](int i) const;
  int64_t numel() const;
  std::span<const int64_t> dims() const { return {dims_.data(), size_t(rank_)}; }
  // Elements between consecutive indices of dimension i in a contiguous layout.
  int64_t stride(int i) const;
  std::string str() const;  // "[2, 16, 5]"

  friend bool operator==(const Shape& a, const Shape& b) {
    if (a.rank_ != b.rank_) return false;
    for (int i = 0; i < a.rank_; ++i)
      if (a.dims_[i] != b.dims_[i]) return false;
    return true;
  }

 private:
  std::array<int64_t, kMaxRank> dims_{};
  int rank_ = 0;
};

enum class DeviceType : uint8_t { cpu = 0, cuda = 1 };

struct REEL_API Device {
  DeviceType type = DeviceType::cpu;
  int index = 0;

  static constexpr Device cpu() { return {DeviceType::cpu, 0}; }
  static constexpr Device cuda(int i = 0) { return {DeviceType::cuda, i}; }
  // "cpu", "cuda", "cuda:1". Anything else throws invalid_argument.
  static Device parse(std::string_view text);
  std::string str() const;
  friend constexpr bool operator==(Device a, Device b) { return a.type == b.type && a.index == b.index; }
};

// Memory for one device type. The CPU one is built in; the CUDA backend registers its own
// (a caching allocator) when it initialises.
class REEL_API DeviceMemory {
 public:
  virtual ~DeviceMemory() = default;
  virtual std::shared_ptr<std::byte> allocate(Device device, size_t bytes) = 0;
  // Copies bytes between any two devices this memory system can reach (one side may be CPU).
  virtual void copy(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) = 0;
  // About how many more bytes allocate() can still hand out on `device` (what is free plus
  // what this memory holds cached), or nothing when it cannot tell. What reel sizes batches by
  // (generate_variants with batch 0). The CPU's: the kernel's MemAvailable, or the cgroup's
  // limit less its usage when that is lower; CUDA's: cudaMemGetInfo's free bytes plus reel's cache.
  virtual std::optional<size_t> available_bytes(Device device) const {
    (void)device;
    return std::nullopt;
  }
};
REEL_API void register_device_memory(DeviceType type, DeviceMemory* memory);
// Throws unsupported when no backend for that device type is built in or initialised.
REEL_API DeviceMemory& device_memory(DeviceType type);

class REEL_API Tensor {
 public:
  Tensor() = default;  // undefined: defined() is false

  // Uninitialised memory (64-byte aligned on the CPU).
  static Tensor empty(const Shape& shape, DType dtype, Device device = Device::cpu());
  static Tensor zeros(const Shape& shape, DType dtype, Device device = Device::cpu());
  // Wraps memory someone else owns; `owner` keeps it alive (e.g. a memory-mapped file).
  static Tensor wrap(const Shape& shape, DType dtype, std::shared_ptr<const void> owner, const void* data,
                     Device device = Device::cpu());
  // CPU copy of host values; the values are rounded to `dtype`.
  static Tensor from_floats(const Shape& shape, std::span<const float> values, DType dtype = DType::f32);

  bool defined() const { return defined_; }
  const Shape& shape() const { return shape_; }
  int rank() const { return shape_.rank(); }
  int64_t dim(int i) const { return shape_[i]; }
  int64_t numel() const { return shape_.numel(); }
  size_t nbytes() const { return size_t(numel()) * dtype_size(dtype_); }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  bool is_cpu() const { return device_.type == DeviceType::cpu; }
  // Wrapped tensors (weights memory-mapped from a file) are read-only.
  bool read_only() const { return read_only_; }

  void* raw();
  const void* raw() const { return data_; }
  // Typed access to CPU memory; the element type must match dtype() (float, bf16, f16, int32_t).
  template <class T> T* data();
  template <class T> const T* data() const;

  Tensor reshape(const Shape& shape) const;        // same element count; shares the buffer
  Tensor slice(int64_t begin, int64_t end) const;  // rows [begin, end) of dimension 0; shares
  Tensor select(int64_t index) const;              // row `index` of dimension 0, rank - 1; shares

  Tensor to(DType dtype) const;    // CPU: converted copy (a copy even when dtype is the same)
  Tensor to(Device device) const;  // on `device`: this tensor when already there, else a copy
  Tensor clone() const;
  // Copies src into this tensor: same shape and dtype, devices may differ.
  void copy_from(const Tensor& src);
  // CPU: all elements as f32 (any dtype).
  std::vector<float> to_floats() const;

 private:
  Shape shape_;
  DType dtype_ = DType::f32;
  Device device_{};
  std::shared_ptr<std::byte> buffer_;  // aliasing pointer: points at this tensor's first byte
  std::byte* data_ = nullptr;
  bool read_only_ = false;
  bool defined_ = false;
  void check_host(DType want) const;
};

template <class T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::f32; };
template <> struct dtype_of<bf16> { static constexpr DType value = DType::bf16; };
template <> struct dtype_of<f16> { static constexpr DType value = DType::f16; };
template <> struct dtype_of<int32_t> { static constexpr DType value = DType::i32; };

template <class T> T* Tensor::data() {
  check_host(dtype_of<T>::value);
  require(!read_only_, StatusCode::invalid_argument, "tensor is read-only (memory-mapped weights)");
  return reinterpret_cast<T*>(data_);
}
template <class T> const T* Tensor::data() const {
  check_host(dtype_of<T>::value);
  return reinterpret_cast<const T*>(data_);
}

// Converts n elements between dtypes on the CPU (f32, bf16, f16; i32 only to itself).
REEL_API void convert_elements(const void* src, DType src_type, void* dst, DType dst_type, size_t n);

}  // namespace reel
