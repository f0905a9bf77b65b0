#include "reel/backend.hpp"

namespace reel {

namespace {
template <class... F> struct overloaded : F... { using F::operator()...; };
template <class... F> overloaded(F...) -> overloaded<F...>;
}  // namespace

std::string_view op_name(const Op& op) {
  return std::visit(overloaded{
                        [](const op::Linear&) { return "linear"; },
                        [](const op::BatchMatMul&) { return "batch_matmul"; },
                        [](const op::Conv3d&) { return "conv3d"; },
                        [](const op::Conv2d&) { return "conv2d"; },
                        [](const op::LayerNorm&) { return "layer_norm"; },
                        [](const op::RmsNorm&) { return "rms_norm"; },
                        [](const op::ChannelL2Norm&) { return "channel_l2_norm"; },
                        [](const op::Unary& u) {
                          switch (u.kind) {
                            case op::UnaryKind::silu: return "silu";
                            case op::UnaryKind::gelu_tanh: return "gelu_tanh";
                            case op::UnaryKind::gelu_erf: return "gelu_erf";
                            case op::UnaryKind::relu: return "relu";
                            case op::UnaryKind::tanh: return "tanh";
                          }
                          return "unary";
                        },
                        [](const op::Softmax&) { return "softmax"; },
                        [](const op::Modulate&) { return "modulate"; },
                        [](const op::Rope&) { return "rope"; },
                        [](const op::Binary& b) {
                          return b.kind == op::BinaryKind::add ? "add" : b.kind == op::BinaryKind::sub ? "sub" : "mul";
                        },
                        [](const op::MulAdd&) { return "mul_add"; },
                        [](const op::Affine&) { return "affine"; },
                        [](const op::Fill&) { return "fill"; },
                        [](const op::Concat&) { return "concat"; },
                        [](const op::Pad&) { return "pad"; },
                        [](const op::UpsampleNearest&) { return "upsample_nearest"; },
                        [](const op::Permute&) { return "permute"; },
                        [](const op::Slice&) { return "slice"; },
                        [](const op::Convert&) { return "convert"; },
                        [](const op::Attention&) { return "attention"; },
                    },
                    op);
}

void Backend::run(const Op& op) {
  validate(op);
  Support s = supports(op);
  if (!s)
    throw Error(StatusCode::unsupported,
                std::string(op_name(op)) + " is not supported by the " + std::string(name()) + " backend: " + s.reason);
  execute(op);
}

}  // namespace reel
