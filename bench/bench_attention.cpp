// Attention kernels over the shape tables bench/shapes/attention_cpu.txt (CPU kernels) and
// attention_gpu.txt (CUDA kernels). Every case first checks its output against the exact
// reference on 12 sampled query rows with the tolerance rule of DESIGN.md
// (max|out − ref| ≤ 2·max|ref_lowprec − ref| + 1e-5, ref from the unrounded inputs), then times.
// Inputs come from a counter-based generator, so the reference recomputes any input value
// without keeping f32 copies of the (possibly multi-GB) tensors.
//
// Counters: tflops (4·B·H·Sq·Skv·D per call / wall time), of_ceiling (fraction of the measured
// bf16 GEMM rate: oneDNN on the CPU, cuBLAS on the GPU), ms, max_err and err_bound. CPU
// kernels also report tflops_cpu_time and of_ceiling_cpu_time: the same rates per CPU second
// of the threads (process CPU time / threads), which stay meaningful when the machine is
// shared with other jobs and wall time includes waiting for a core.
//
//   bench_attention                                   # CPU kernels, attention_cpu.txt
//   bench_attention --kernels=cpu_flash --shapes=attention_cpu.txt --threads=2 --benchmark_format=json
//   REEL_BENCH_ATTENTION_KERNELS=cuda_flash,cublas REEL_BENCH_ATTENTION_SHAPES=attention_gpu.txt bench_attention
//
// Shape files: one case per line, "B Sq Skv H D dtype [label]", '#' starts a comment; a path
// without '/' is looked up in bench/shapes/.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/ceiling.hpp"
#include "common/measure.hpp"
#include "common/shapes.hpp"
#include "parallel.hpp"
#include "reel/attention.hpp"

#ifdef REEL_HAVE_CUDA
#include <cublas_v2.h>
#include <cuda_runtime.h>
#endif

namespace {

using namespace reel;

struct Case {
  int64_t batch, seq_q, seq_kv, heads, head_dim;
  DType dtype;
  std::string label;
};

std::vector<Case> read_cases(const std::string& file) {
  const std::string path = bench::shape_table_path(file);
  std::vector<Case> cases;
  for (const std::string& line : bench::read_shape_lines(path, "attention shape file")) {
    std::istringstream ss(line);
    Case c{};
    std::string dtype;
    if (!(ss >> c.batch)) continue;
    if (!(ss >> c.seq_q >> c.seq_kv >> c.heads >> c.head_dim >> dtype))
      throw std::runtime_error(path + ": expected 'B Sq Skv H D dtype [label]' in '" + line + "'");
    if (dtype == "bf16") c.dtype = DType::bf16;
    else if (dtype == "f16") c.dtype = DType::f16;
    else if (dtype == "f32") c.dtype = DType::f32;
    else throw std::runtime_error(path + ": unknown dtype '" + dtype + "'");
    ss >> c.label;
    cases.push_back(c);
  }
  return cases;
}

// ---------------------------------------------------------------- inputs and reference

// Counter-based uniform values: value(tensor, i) is a pure function, so inputs are generated
// in parallel and the reference can recompute any of them.
double input_value(uint64_t tensor, int64_t i) {
  uint64_t x = (uint64_t(i) + 1) * 0x9E3779B97F4A7C15ull ^ (tensor * 0xD1B54A32D192ED03ull);
  x ^= x >> 30, x *= 0xBF58476D1CE4E5B9ull, x ^= x >> 27, x *= 0x94D049BB133111EBull, x ^= x >> 31;
  const double u = double(x >> 40) * 0x1p-24;  // [0, 1)
  const double range = tensor == 0 ? 4.0 : tensor == 1 ? 2.0 : 1.0;  // q, k, v as in the tests
  return (2.0 * u - 1.0) * range;
}

Tensor make_input(uint64_t tensor, const Shape& shape, DType dtype) {
  Tensor t = Tensor::empty(shape, dtype);
  void* base = t.raw();
  parallel_for(t.numel(), 1 << 16, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const float v = float(input_value(tensor, i));
      if (dtype == DType::bf16) static_cast<bf16*>(base)[i] = bf16::from_float(v);
      else if (dtype == DType::f16) static_cast<f16*>(base)[i] = f16::from_float(v);
      else static_cast<float*>(base)[i] = v;
    }
  });
  return t;
}

// Exact attention row (b, h, i) for contiguous [B, S, H, D] inputs; `rounded` evaluates it on
// the inputs rounded to dtype (what the kernel reads) instead of the originals.
std::vector<double> reference_row(const Case& c, int64_t b, int64_t h, int64_t i, bool rounded) {
  auto val = [&](uint64_t tensor, int64_t idx) {
    const double x = input_value(tensor, idx);
    return rounded ? double(round_to(c.dtype, float(x))) : double(float(x));
  };
  const int64_t d = c.head_dim, hd = c.heads * d;
  std::vector<double> q(static_cast<size_t>(d)), s(static_cast<size_t>(c.seq_kv)), o(static_cast<size_t>(d), 0.0);
  for (int64_t x = 0; x < d; ++x) q[size_t(x)] = val(0, (b * c.seq_q + i) * hd + h * d + x);
  const double scale = double(1.0f / std::sqrt(float(d)));
  double m = -INFINITY;
  for (int64_t j = 0; j < c.seq_kv; ++j) {
    double dot = 0;
    for (int64_t x = 0; x < d; ++x) dot += q[size_t(x)] * val(1, (b * c.seq_kv + j) * hd + h * d + x);
    s[size_t(j)] = scale * dot;
    m = std::max(m, s[size_t(j)]);
  }
  double l = 0;
  for (int64_t j = 0; j < c.seq_kv; ++j) {
    const double e = std::exp(s[size_t(j)] - m);
    l += e;
    for (int64_t x = 0; x < d; ++x) o[size_t(x)] += e * val(2, (b * c.seq_kv + j) * hd + h * d + x);
  }
  for (double& x : o) x /= l;
  return o;
}

// Empty when the sampled rows of `out` (on the CPU) meet the tolerance rule; else what failed.
std::string verify(const Case& c, const Tensor& out, double* max_err, double* bound) {
  const std::vector<float> o = out.to_floats();
  const int samples = 12;
  double err = 0, ref_err = 0;
  for (int s = 0; s < samples; ++s) {
    const int64_t b = s % c.batch, h = (s * 7) % c.heads;
    const int64_t i = s == 0 ? 0 : s == samples - 1 ? c.seq_q - 1 : (int64_t(s) * 7919 * 7919) % c.seq_q;
    const std::vector<double> ref = reference_row(c, b, h, i, false), low = reference_row(c, b, h, i, true);
    for (int64_t x = 0; x < c.head_dim; ++x) {
      const double got = o[size_t(((b * c.seq_q + i) * c.heads + h) * c.head_dim + x)];
      err = std::max(err, std::abs(got - ref[size_t(x)]));
      ref_err = std::max(ref_err, std::abs(double(round_to(c.dtype, float(low[size_t(x)]))) - ref[size_t(x)]));
      if (!std::isfinite(got)) err = INFINITY;
    }
  }
  *max_err = err;
  *bound = 2 * ref_err + 1e-5;
  if (err <= *bound) return {};
  return "max|out - ref| = " + std::to_string(err) + " over sampled rows exceeds the bound " + std::to_string(*bound);
}

// ---------------------------------------------------------------- GPU ceiling and sync

#ifdef REEL_HAVE_CUDA
// cuBLAS bf16 GEMM (8192³, f32 accumulation) rate on device 0, measured once.
double gpu_bf16_gemm_ceiling_tflops() {
  static double value = [] {
    const int n = 8192;
    void *a = nullptr, *b = nullptr, *c = nullptr;
    if (cudaMalloc(&a, size_t(n) * n * 2) || cudaMalloc(&b, size_t(n) * n * 2) || cudaMalloc(&c, size_t(n) * n * 2))
      return 0.0;
    cudaMemset(a, 0x3c, size_t(n) * n * 2);  // non-zero bf16 values; the rate does not depend on them
    cudaMemset(b, 0x3c, size_t(n) * n * 2);
    cublasHandle_t h;
    cublasCreate(&h);
    const float one = 1, zero = 0;
    double best = 1e30;
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0);
    cudaEventCreate(&e1);
    for (int it = 0; it < 6; ++it) {
      cudaEventRecord(e0);
      cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, a, CUDA_R_16BF, n, b, CUDA_R_16BF, n, &zero, c,
                   CUDA_R_16BF, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
      cudaEventRecord(e1);
      cudaEventSynchronize(e1);
      float ms = 0;
      cudaEventElapsedTime(&ms, e0, e1);
      if (it > 0) best = std::min(best, double(ms) / 1e3);
    }
    cublasDestroy(h);
    cudaFree(a), cudaFree(b), cudaFree(c);
    return 2.0 * n * double(n) * n / best / 1e12;
  }();
  return value;
}
void sync_device() { cudaDeviceSynchronize(); }
#else
double gpu_bf16_gemm_ceiling_tflops() { return 0; }
void sync_device() {}
#endif

// ---------------------------------------------------------------- one case

void bench_case_body(benchmark::State& state, const AttentionKernel* kernel, const Case& c) {
  const bool gpu = kernel->device_type() == DeviceType::cuda;
  const Device dev = gpu ? Device::cuda() : Device::cpu();
  Tensor q = make_input(0, {c.batch, c.seq_q, c.heads, c.head_dim}, c.dtype);
  Tensor k = make_input(1, {c.batch, c.seq_kv, c.heads, c.head_dim}, c.dtype);
  Tensor v = make_input(2, {c.batch, c.seq_kv, c.heads, c.head_dim}, c.dtype);
  if (gpu) q = q.to(dev), k = k.to(dev), v = v.to(dev);
  Tensor out = Tensor::empty(q.shape(), c.dtype, dev);
  const AttentionParams p = attention_params(q, k, v, out, 1.0f / std::sqrt(float(c.head_dim)));
  if (Support s = kernel->supports(p); !s) {
    state.SkipWithError(("not supported: " + s.reason).c_str());
    return;
  }
  run_attention(p, kernel->name());
  sync_device();
  double max_err = 0, bound = 0;
  if (std::string err = verify(c, gpu ? out.to(Device::cpu()) : out, &max_err, &bound); !err.empty()) {
    state.SkipWithError(("result check failed: " + err).c_str());
    return;
  }
  double total = 0, cpu_total = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = bench::process_cpu_seconds();
    kernel->run(p);
    sync_device();
    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    cpu_total += bench::process_cpu_seconds() - c0;
    state.SetIterationTime(sec);
    total += sec;
  }
  const double tflops = attention_flops(p) * double(state.iterations()) / total / 1e12;
  const double ceiling = gpu ? gpu_bf16_gemm_ceiling_tflops() : bench::bf16_gemm_ceiling_tflops();
  state.counters["tflops"] = tflops;
  state.counters["of_ceiling"] = ceiling > 0 ? tflops / ceiling : 0.0;
  state.counters["ms"] = total / double(state.iterations()) * 1e3;
  state.counters["max_err"] = max_err;
  state.counters["err_bound"] = bound;
  if (!gpu) {
    const double cpu_rate = attention_flops(p) * double(state.iterations()) / (cpu_total / num_threads()) / 1e12;
    state.counters["tflops_cpu_time"] = cpu_rate;
    state.counters["of_ceiling_cpu_time"] = cpu_rate / bench::bf16_gemm_ceiling_cpu_time_tflops();
    state.counters["threads"] = num_threads();
  }
}

// One case; an error (no GPU, out of memory, a kernel failure) skips it with the message
// instead of ending the whole run.
void bench_case(benchmark::State& state, const AttentionKernel* kernel, Case c) {
  try {
    bench_case_body(state, kernel, c);
  } catch (const std::exception& e) {
    state.SkipWithError((std::string("error: ") + e.what()).c_str());
  }
}

std::string option(int* argc, char** argv, const std::string& flag, const char* env) {
  std::string value = std::getenv(env) ? std::getenv(env) : "";
  int kept = 1;
  for (int i = 1; i < *argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind(flag + "=", 0) == 0) value = arg.substr(flag.size() + 1);
    else argv[kept++] = argv[i];
  }
  *argc = kept;
  return value;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string kernels_opt = option(&argc, argv, "--kernels", "REEL_BENCH_ATTENTION_KERNELS");
  const std::string shapes_opt = option(&argc, argv, "--shapes", "REEL_BENCH_ATTENTION_SHAPES");
  const std::string threads_opt = option(&argc, argv, "--threads", "REEL_BENCH_ATTENTION_THREADS");
  benchmark::Initialize(&argc, argv);
  if (!threads_opt.empty()) set_num_threads(std::stoi(threads_opt));

  // Kernels: the named ones, or every kernel of the default device (CUDA when a GPU is
  // present, else CPU) except the slow reference.
  const bool have_gpu = cuda_device_count() > 0;
  std::vector<const AttentionKernel*> kernels;
  if (!kernels_opt.empty()) {
    for (const std::string& name : split(kernels_opt)) {
      const AttentionKernel* k = find_attention_kernel(name);
      if (!k) {
        std::fprintf(stderr, "bench_attention: no attention kernel named '%s'\n", name.c_str());
        return 1;
      }
      kernels.push_back(k);
    }
  } else {
    const DeviceType want = have_gpu ? DeviceType::cuda : DeviceType::cpu;
    for (const AttentionKernel* k : attention_kernels())
      if (k->device_type() == want && k->name() != "cpu_reference") kernels.push_back(k);
  }
  bool any_cpu = false, any_gpu = false;
  for (const AttentionKernel* k : kernels) (k->device_type() == DeviceType::cuda ? any_gpu : any_cpu) = true;

  try {
    std::vector<std::pair<std::string, std::vector<Case>>> tables;
    if (!shapes_opt.empty()) tables.push_back({shapes_opt, read_cases(shapes_opt)});
    else {
      if (any_cpu) tables.push_back({"attention_cpu.txt", read_cases("attention_cpu.txt")});
      if (any_gpu) tables.push_back({"attention_gpu.txt", read_cases("attention_gpu.txt")});
    }
    if (any_cpu) {
      benchmark::AddCustomContext("cpu_bf16_gemm_ceiling_tflops", std::to_string(bench::bf16_gemm_ceiling_tflops()));
      benchmark::AddCustomContext("cpu_bf16_gemm_ceiling_cpu_time_tflops",
                                  std::to_string(bench::bf16_gemm_ceiling_cpu_time_tflops()));
    }
    if (any_gpu && have_gpu)
      benchmark::AddCustomContext("gpu_bf16_gemm_ceiling_tflops", std::to_string(gpu_bf16_gemm_ceiling_tflops()));
    for (const auto& [file, cases] : tables)
      for (const Case& c : cases)
        for (const AttentionKernel* k : kernels) {
          // Without an explicit shape file, each device's kernels run its own table.
          if (shapes_opt.empty() && (k->device_type() == DeviceType::cuda) != (file == "attention_gpu.txt")) continue;
          const std::string name = "attention/" + std::string(k->name()) + "/" + std::string(dtype_name(c.dtype)) +
                                   "/B" + std::to_string(c.batch) + "_Sq" + std::to_string(c.seq_q) + "_Skv" +
                                   std::to_string(c.seq_kv) + "_H" + std::to_string(c.heads) + "_D" +
                                   std::to_string(c.head_dim) + (c.label.empty() ? "" : "/" + c.label);
          benchmark::RegisterBenchmark(name.c_str(), bench_case, k, c)
              ->UseManualTime()
              ->Unit(benchmark::kMillisecond)
              ->MinTime(0.5);
        }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_attention: %s\n", e.what());
    return 1;
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
