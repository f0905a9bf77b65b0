// Internal: "does this build hold code that this CUDA device can run?" for the attention
// kernels' supports(). reel builds its kernels for REEL_CUDA_ARCHITECTURES (default
// "80-real;90-real": SASS only, no PTX), so on another GPU (sm_100, sm_120) a launch would fail
// with "no kernel image" at run time; supports() says so instead, and the selector moves on.
//
// A .cu file that holds a kernel gives a Probe: cudaFuncGetAttributes on one of its own
// __global__ functions (fails with cudaErrorNoKernelImageForDevice when the file has no code
// for the current device) and that file's arch list (nvcc's __CUDA_ARCH_LIST__):
//
//   kernel_image::Probe probe_softmax() {  // in the .cu file
//     cudaFuncAttributes attr{};
//     return {int(cudaFuncGetAttributes(&attr, softmax_rows<float>)), REEL_CUDA_ARCH_LIST_STRING};
//   }
//   if (Support s = cuda_checks::kernel_image_ok(p, probe_softmax); !s) return s;  // supports()
//
// The text below is plain host code (tested without a GPU in tests/attention).
#pragma once
#include <string>
#include <string_view>
#include <vector>

// nvcc's __CUDA_ARCH_LIST__ (the virtual architectures this .cu file was compiled for, e.g.
// 800,900) as a string literal, "800,900"; "" outside nvcc.
#define REEL_KERNEL_IMAGE_STRINGIFY_(...) #__VA_ARGS__
#define REEL_KERNEL_IMAGE_STRINGIFY(...) REEL_KERNEL_IMAGE_STRINGIFY_(__VA_ARGS__)
#ifdef __CUDA_ARCH_LIST__
#define REEL_CUDA_ARCH_LIST_STRING REEL_KERNEL_IMAGE_STRINGIFY(__CUDA_ARCH_LIST__)
#else
#define REEL_CUDA_ARCH_LIST_STRING ""
#endif

namespace reel::attn::kernel_image {

struct Probe {
  int error = 0;                 // cudaError_t of cudaFuncGetAttributes on the current device
  const char* arch_list = "";    // REEL_CUDA_ARCH_LIST_STRING of the kernel's .cu file
};
using ProbeFn = Probe (*)();

// The compute capabilities (major·10 + minor) in an __CUDA_ARCH_LIST__ string: "800,900" →
// {80, 90}, "1000, 1210" → {100, 121}. Tokens that are not numbers are skipped.
std::vector<int> parse_arch_list(std::string_view arch_list);

// "sm_80, sm_90" for "800,900"; "no CUDA architecture" when the list holds none.
std::string sm_names(std::string_view arch_list);

// Why a kernel cannot run on `device` of compute capability `cc` (major·10 + minor):
// "this build has no code for sm_120 (CUDA device 0; built for sm_80, sm_90): rebuild with
// REEL_CUDA_ARCHITECTURES including 120".
std::string no_code_reason(int device, int cc, std::string_view arch_list);

}  // namespace reel::attn::kernel_image
