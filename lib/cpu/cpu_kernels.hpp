// Internal: the CPU backend's per-op entry points. For every op struct in reel/backend.hpp,
// `supports(op)` says whether the CPU kernels can run it (after validate() accepted it) and
// `execute(op, ctx)` runs it. cpu_backend.cpp puts exactly these pairs into its one table.
#pragma once
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "reel/backend.hpp"

namespace dnnl {
struct engine;
}

namespace reel::cpu {

// State the kernels share: the oneDNN engine and a cache of built primitives, keyed by a
// string that encodes the op's shapes, dtypes and parameters.
class CpuContext {
 public:
  // native_low_precision: run bf16 GEMMs/convolutions on oneDNN's bf16 kernels; when false they
  // are computed in f32 from exactly widened operands.
  explicit CpuContext(bool native_low_precision);
  ~CpuContext();
  const dnnl::engine& engine() const { return *engine_; }
  bool native_low_precision() const { return native_low_precision_; }

  // Returns the cached object for `key`, building it with make() on first use.
  std::shared_ptr<void> cached(const std::string& key, const std::function<std::shared_ptr<void>()>& make);

 private:
  std::unique_ptr<dnnl::engine> engine_;
  bool native_low_precision_;
  std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<void>> cache_;
};

// cpu_matmul.cpp
Support supports(const op::Linear&);
void execute(const op::Linear&, CpuContext&);
Support supports(const op::BatchMatMul&);
void execute(const op::BatchMatMul&, CpuContext&);
// cpu_conv.cpp
Support supports(const op::Conv3d&);
void execute(const op::Conv3d&, CpuContext&);
Support supports(const op::Conv2d&);
void execute(const op::Conv2d&, CpuContext&);
// cpu_norm.cpp
Support supports(const op::LayerNorm&);
void execute(const op::LayerNorm&, CpuContext&);
Support supports(const op::RmsNorm&);
void execute(const op::RmsNorm&, CpuContext&);
Support supports(const op::ChannelL2Norm&);
void execute(const op::ChannelL2Norm&, CpuContext&);
Support supports(const op::Softmax&);
void execute(const op::Softmax&, CpuContext&);
// cpu_elementwise.cpp
Support supports(const op::Unary&);
void execute(const op::Unary&, CpuContext&);
Support supports(const op::Binary&);
void execute(const op::Binary&, CpuContext&);
Support supports(const op::MulAdd&);
void execute(const op::MulAdd&, CpuContext&);
Support supports(const op::Affine&);
void execute(const op::Affine&, CpuContext&);
Support supports(const op::Fill&);
void execute(const op::Fill&, CpuContext&);
Support supports(const op::Convert&);
void execute(const op::Convert&, CpuContext&);
Support supports(const op::Modulate&);
void execute(const op::Modulate&, CpuContext&);
Support supports(const op::Rope&);
void execute(const op::Rope&, CpuContext&);
// cpu_attention.cpp
Support supports(const op::Attention&);
void execute(const op::Attention&, CpuContext&);
// cpu_layout.cpp
Support supports(const op::Concat&);
void execute(const op::Concat&, CpuContext&);
Support supports(const op::Pad&);
void execute(const op::Pad&, CpuContext&);
Support supports(const op::UpsampleNearest&);
void execute(const op::UpsampleNearest&, CpuContext&);
Support supports(const op::Permute&);
void execute(const op::Permute&, CpuContext&);
Support supports(const op::Slice&);
void execute(const op::Slice&, CpuContext&);

}  // namespace reel::cpu
