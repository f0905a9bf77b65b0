// An emulated GPU for tests on machines without one: "device" memory that lives in host RAM
// but is labelled Device::cuda(0), with a ledger of every host↔device copy, and a backend
// whose device is cuda(0) and which runs each op with the CPU kernels on host shadows of its
// tensors. Code under test sees a separate device: Tensor::data() refuses device tensors, the
// CPU backend refuses them, and every crossing goes through DeviceMemory::copy (counted). So a
// pipeline that runs here touches device data only through backend ops, and the ledger shows
// exactly what crosses between host and device. The arithmetic is the CPU backend's, so
// results must equal a CPU run bit for bit.
//
//   EmulatedDevice& dev = EmulatedDevice::install();     // once per test process
//   auto be = std::make_shared<EmulatedDeviceBackend>(2);
//   dev.ledger().reset();
//   ... run something on *be ...
//   std::printf("%llu bytes uploaded\n", (unsigned long long)dev.ledger().h2d_bytes.load());
//
// Only for test processes that do not use a real GPU: installing it replaces reel's CUDA memory.
#pragma once
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <stdexcept>
#include <tuple>

#include "reel/backend.hpp"
#include "reel/cuda_backend.hpp"

namespace reel::test {

// What crossed between the host and the emulated device, and the device memory held.
struct TransferLedger {
  std::atomic<uint64_t> h2d_bytes{0}, h2d_copies{0};  // host → device
  std::atomic<uint64_t> d2h_bytes{0}, d2h_copies{0};  // device → host
  std::atomic<uint64_t> d2d_bytes{0};
  std::atomic<int64_t> live_bytes{0}, peak_bytes{0};
  void reset_transfers() {
    h2d_bytes = h2d_copies = d2h_bytes = d2h_copies = d2d_bytes = 0;
    peak_bytes = live_bytes.load();
  }
};

class EmulatedDevice final : public DeviceMemory {
 public:
  // Registers the emulated memory for DeviceType::cuda (after letting a real GPU's memory
  // register first, so that it cannot replace this one later) and returns it.
  static EmulatedDevice& install() {
    static EmulatedDevice* device = [] {
      (void)cuda_device_count();
      try {
        (void)device_memory(DeviceType::cuda);  // a real GPU registers its memory now, once
      } catch (const Error&) {
      }
      auto* d = new EmulatedDevice();  // never freed: tensors may outlive static destructors
      register_device_memory(DeviceType::cuda, d);
      return d;
    }();
    return *device;
  }

  TransferLedger& ledger() { return ledger_; }

  std::shared_ptr<std::byte> allocate(Device device, size_t bytes) override {
    if (device.type != DeviceType::cuda || device.index != 0)
      throw Error(StatusCode::invalid_argument, "emulated device: only cuda:0 exists, not " + device.str());
    const size_t rounded = (bytes + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, rounded == 0 ? 64 : rounded);
    if (!p) throw Error(StatusCode::out_of_memory, "emulated device: out of memory");
    std::memset(p, 0xA5, rounded == 0 ? 64 : rounded);  // garbage, as real device memory is
    const int64_t now = ledger_.live_bytes += int64_t(bytes);
    for (int64_t peak = ledger_.peak_bytes.load(); now > peak && !ledger_.peak_bytes.compare_exchange_weak(peak, now);) {
    }
    TransferLedger* ledger = &ledger_;
    return std::shared_ptr<std::byte>(static_cast<std::byte*>(p), [ledger, bytes](std::byte* q) {
      ledger->live_bytes -= int64_t(bytes);
      std::free(q);
    });
  }

  void copy(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) override {
    const bool to_dev = dst_device.type == DeviceType::cuda, from_dev = src_device.type == DeviceType::cuda;
    if (to_dev && !from_dev) ledger_.h2d_bytes += bytes, ++ledger_.h2d_copies;
    else if (from_dev && !to_dev) ledger_.d2h_bytes += bytes, ++ledger_.d2h_copies;
    else if (from_dev && to_dev) ledger_.d2d_bytes += bytes;
    if (std::getenv("REEL_EMULATED_DEVICE_TRACE"))
      std::fprintf(stderr, "emulated device: %s %zu bytes\n", to_dev ? (from_dev ? "d2d" : "h2d") : "d2h", bytes);
    std::memmove(dst, src, bytes);
  }

 private:
  EmulatedDevice() = default;
  TransferLedger ledger_;
};

// Runs every op of the Backend interface on an emulated cuda:0: host shadows of the op's
// tensors (copies that do not count as transfers), the CPU backend's kernels, results copied
// back into the device tensors.
class EmulatedDeviceBackend final : public Backend {
 public:
  explicit EmulatedDeviceBackend(int threads) : cpu_(make_cpu_backend({.threads = threads})) {
    EmulatedDevice::install();
  }

  std::string_view name() const override { return "emulated_cuda"; }
  Device device() const override { return Device::cuda(0); }

  Support supports(const Op& op) const override {
    Support result = Support::yes();
    for_each_tensor(op, [&](const Tensor* t, const char* role) {
      if (result && t && t->defined() && !(t->device() == device()))
        result = Support::no(std::string(role) + " is on " + t->device().str() + "; this backend runs on cuda:0");
    });
    if (!result) return result;
    Shadows shadows;
    return cpu_->supports(shadows.host_op(op, /*copy_in=*/false));
  }

  void execute(const Op& op) override {
    Shadows shadows;
    const Op host = shadows.host_op(op, /*copy_in=*/true);
    cpu_->run(host);
    shadows.copy_out();
  }

  // Calls fn(tensor pointer, role) for every tensor slot of an op (inputs, then "out").
  template <class Fn>
  static void for_each_tensor(const Op& op, Fn&& fn) {
    Op copy = op;
    visit_slots(copy, [&](auto*& slot, const char* role) { fn(static_cast<const Tensor*>(slot), role); });
  }

 private:
  // Host copies of the device tensors of one op, keyed by memory and layout so that an op's
  // in-place output shares its input's shadow.
  class Shadows {
   public:
    Op host_op(const Op& op, bool copy_in) {
      Op h = op;
      visit_slots(h, [&](auto*& slot, const char* role) {
        if (!slot || !slot->defined() || slot->is_cpu()) return;
        Entry& e = shadow_of(*slot, copy_in, std::string_view(role) == "out");
        using Slot = std::remove_reference_t<decltype(slot)>;
        slot = static_cast<Slot>(&e.host);
      });
      return h;
    }
    void copy_out() {
      for (auto& [key, e] : entries_)
        if (e.written) std::memcpy(e.device->raw(), e.host.raw(), e.host.nbytes());
    }

   private:
    struct Entry {
      Tensor* device;
      Tensor host;
      bool written = false;
    };
    Entry& shadow_of(const Tensor& t, bool copy_in, bool written) {
      const auto key = std::make_tuple(t.raw(), t.shape().str(), int(t.dtype()));
      auto it = entries_.find(key);
      if (it == entries_.end()) {
        Tensor host = Tensor::empty(t.shape(), t.dtype());
        if (copy_in) std::memcpy(host.raw(), t.raw(), t.nbytes());
        it = entries_.emplace(key, Entry{const_cast<Tensor*>(&t), std::move(host)}).first;
      }
      if (written) {
        it->second.written = true;
        it->second.device = const_cast<Tensor*>(&t);
      }
      return it->second;
    }
    std::map<std::tuple<const void*, std::string, int>, Entry> entries_;
  };

  // The tensor slots of each op struct; fn(slot, role) may replace the pointer.
  template <class Fn>
  static void visit_slots(Op& op, Fn&& fn) {
    std::visit(
        [&](auto& o) {
          using T = std::decay_t<decltype(o)>;
          if constexpr (std::is_same_v<T, op::Linear> || std::is_same_v<T, op::Conv3d> ||
                        std::is_same_v<T, op::Conv2d>) {
            fn(o.x, "x"), fn(o.weight, "weight"), fn(o.bias, "bias");
          } else if constexpr (std::is_same_v<T, op::BatchMatMul> || std::is_same_v<T, op::Binary>) {
            fn(o.a, "a"), fn(o.b, "b");
          } else if constexpr (std::is_same_v<T, op::LayerNorm>) {
            fn(o.x, "x"), fn(o.weight, "weight"), fn(o.bias, "bias");
            visit_modulation(o, fn);
          } else if constexpr (std::is_same_v<T, op::RmsNorm>) {
            fn(o.x, "x"), fn(o.weight, "weight");
          } else if constexpr (std::is_same_v<T, op::ChannelL2Norm>) {
            fn(o.x, "x"), fn(o.gamma, "gamma"), fn(o.bias, "bias");
          } else if constexpr (std::is_same_v<T, op::Modulate>) {
            fn(o.x, "x"), fn(o.scale, "scale"), fn(o.shift, "shift");
          } else if constexpr (std::is_same_v<T, op::Rope>) {
            fn(o.x, "x"), fn(o.cos, "cos"), fn(o.sin, "sin");
          } else if constexpr (std::is_same_v<T, op::MulAdd>) {
            fn(o.a, "a"), fn(o.b, "b"), fn(o.c, "c");
          } else if constexpr (std::is_same_v<T, op::Concat>) {
            for (const Tensor*& in : o.inputs) fn(in, "an input");
          } else if constexpr (std::is_same_v<T, op::Attention>) {
            fn(o.q, "q"), fn(o.k, "k"), fn(o.v, "v");
          } else if constexpr (std::is_same_v<T, op::Fill>) {
            // no inputs
          } else {  // Unary, Softmax, Affine, Pad, UpsampleNearest, Permute, Slice, Convert
            fn(o.x, "x");
          }
          fn(o.out, "out");
        },
        op);
  }

  // The optional modulation inputs of a fused LayerNorm, when this build's op has them.
  template <class L, class Fn>
  static void visit_modulation(L& o, Fn&& fn) {
    if constexpr (requires { o.mod_scale; o.mod_shift; }) fn(o.mod_scale, "mod_scale"), fn(o.mod_shift, "mod_shift");
  }

  std::unique_ptr<Backend> cpu_;
};

}  // namespace reel::test
