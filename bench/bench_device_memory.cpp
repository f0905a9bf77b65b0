// The GPU memory plan of the Wan text-to-video pipeline, measured exactly without a GPU: every
// device tensor reel makes goes through DeviceMemory::allocate, so the pipeline's stages run
// here through the library's real code on an accounting cuda:0 (bench/common/
// accounting_device.hpp: memory that costs nothing until touched, exact books, a backend that
// does no arithmetic) and the books give the device memory they would take on a GPU.
//
// Each case loads, on the device, what the pipeline keeps there with the text encoder off the
// GPU: the transformer (bf16 weights, values irrelevant: allocated, never written), the Wan 2.1
// VAE decoder (f32 compute as the pipeline loads it, or bf16 in the vae_bf16 case; zero weights
// read from a safetensors file through WanVae::from_store), the text context (cond, uncond and
// their batch, [2, 512, 4096] bf16, as lib/pipeline/text_conditioning.cpp makes it), then runs
//   step        one denoising forward with classifier-free guidance in one batch of 2, as
//               lib/pipeline/denoise.cpp calls it (host latents [2, 16, F, h, w] f32, output back
//               on the host); the RoPE tables it uploads stay cached on the device after it;
//   step_nocfg  the same with a batch of 1 (batch_cfg off: cond and uncond one after the other);
//   decode      latents [16, F, h, w] through lib/pipeline/decode.cpp's path: uploaded,
//               denormalize_latents, WanVae::decode one latent frame per chunk, frames to the host.
// Cases: Wan2.1-T2V-1.3B (D 1536, 12 heads, 30 layers, ffn 8960) at 480×832×81 (latents
// [16, 21, 60, 104], 32 760 tokens; also with the VAE in bf16), Wan2.1-T2V-14B (D 5120, 40
// heads, 40 layers, ffn 13824) at 480×832×81 and at 720×1280×81 (latents [16, 21, 90, 160],
// 75 600 tokens).
//
// Counters (GB = 10⁹ bytes): dit_weights_gb, vae_weights_gb, text_gb, resident_gb (all three);
// for step, step_nocfg and decode: <stage>_peak_gb (bytes asked for, live at the stage's peak,
// resident models included), <stage>_peak_class_gb (the same blocks rounded to reel's caching-
// allocator size classes: what cuda_memory_stats().peak_in_use_bytes would say), <stage>_ops;
// decode_peak_dit_offloaded_gb: decode_peak_gb less the transformer's weights (were they moved
// off the GPU for the decode); peak_gb / peak_class_gb: the whole pipeline (max of the stages,
// both models resident); peak_reserved_gb: what the
// caching allocator would hold from the driver over the case on a GPU with room to spare (in
// use + cached; on a smaller GPU it empties its cache and retries before failing);
// max_op_scratch_gb: the largest per-op scratch of the CUDA backend's dtype paths (conversions,
// f32 accumulators) the plan contains. Not counted (context "memory_plan"): cuBLASLt workspace
// (32 MiB), cuDNN convolution workspaces, attention workspaces (cudaMallocAsync), the CUDA context.
// The largest blocks live at each stage's peak, and the bytes per tag, go to stderr.
//
// Before measuring, the plan itself is checked (a bench that checks nothing is a defect): a
// 2-layer transformer with small widths (192 tokens, 16 text tokens) and the full Wan 2.1 VAE
// decoder (latents [16, 3, 4, 4]: 9 frames of 32×32, three chunks) run once COMPUTING — on the
// tests' emulated cuda:0 (tests/common/emulated_device.hpp: CPU kernels on device-labelled
// memory with its own ledger) — and once on the accounting backend without arithmetic. The two
// runs must issue the same ops with the same output shapes, in the same order, and have the
// same device-memory peak above their start (the emulated ledger against the accounting books,
// to the byte); after each run the device holds what it held before (no leak; the transformer's
// first forward leaves exactly its RoPE tables cached); the computing forward must equal the
// CPU backend's (the emulated device's contract: bit for bit). At full size, after every stage
// the live bytes are checked the same way, and the op counts against the layer count.
//
//   bench_device_memory --benchmark_format=json
//   bench_device_memory --benchmark_filter=t2v_1.3b
//   REEL_BENCH_MEMORY_TOP=40 bench_device_memory    (list 40 blocks at each peak; default 10)
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "common/accounting_device.hpp"
#include "common/checks.hpp"
#include "common/wan_shapes.hpp"
#include "common/wan_vae_file.hpp"
#include "reel/ops.hpp"
#include "reel/rng.hpp"
#include "reel/vae.hpp"
#include "reel/wan_transformer.hpp"
#include "reel/weights.hpp"
#include "tests/common/emulated_device.hpp"
#include "wan/wan_model.hpp"

namespace {

using namespace reel;
using bench::AccountingBackend;
using bench::AccountingDevice;
using bench::AccountingStats;

constexpr int64_t kTextTokens = 512, kTextDim = 4096;
constexpr float kTimestep = 950.0f;
constexpr double kGB = 1e9;

// ---------------------------------------------------------------- models

// Calls fn(tensor) for every weight slot of w (undefined ones included). For empty_transformer,
// whose device tensors must stay unwritten (untouched memory costs nothing here), so they cannot
// come from an upload (WanTransformer::to).
template <class Fn>
void for_each_weight(wan::WanWeights& w, Fn&& fn) {
  for (wan::Linear* l :
       {&w.patch, &w.time_in, &w.time_out, &w.time_proj, &w.text_in, &w.text_out, &w.image_in, &w.image_out, &w.head})
    fn(l->weight), fn(l->bias);
  for (wan::Affine* a : {&w.image_norm_in, &w.image_norm_out}) fn(a->weight), fn(a->bias);
  fn(w.head_modulation);
  for (wan::BlockWeights& b : w.blocks) {
    for (wan::Linear* l : {&b.q, &b.k, &b.v, &b.o, &b.cross_q, &b.cross_k, &b.cross_v, &b.cross_o, &b.image_k,
                           &b.image_v, &b.ffn_in, &b.ffn_out})
      fn(l->weight), fn(l->bias);
    for (Tensor* t : {&b.modulation, &b.norm_q, &b.norm_k, &b.cross_norm_q, &b.cross_norm_k, &b.image_norm_k}) fn(*t);
    fn(b.cross_norm.weight), fn(b.cross_norm.bias);
  }
}

// The transformer with bf16 weights allocated on the device and never written: the shapes and
// dtypes of wan::random_weights (made for one layer on the host, then dropped), one device
// tensor per weight, as the loader uploads them.
WanTransformer empty_transformer(const WanConfig& cfg) {
  WanConfig one = cfg;
  one.layers = 1;
  wan::WanWeights w = wan::random_weights(one, WanPrecision::bf16, /*seed=*/1);
  w.blocks.assign(size_t(cfg.layers), w.blocks.front());
  for_each_weight(w, [](Tensor& t) {
    if (t.defined()) t = Tensor::empty(t.shape(), t.dtype(), Device::cuda(0));
  });
  return bench::wan_transformer(cfg, std::move(w), WanPrecision::bf16, Device::cuda(0));
}

// The same random weights on the host (for the CPU reference) and on the device.
std::pair<WanTransformer, WanTransformer> random_transformers(const WanConfig& cfg) {
  WanTransformer host = bench::random_wan_transformer(cfg, WanPrecision::bf16, /*seed=*/7);
  WanTransformer device = host.to(Device::cuda(0));
  return {std::move(host), std::move(device)};
}

// A bf16 safetensors file of the Wan 2.1 VAE decoder's weights (zeros), written once to the
// temporary folder and removed at exit.
const std::filesystem::path& vae_file() {
  struct File {
    std::filesystem::path path;
    File() : path(bench::write_wan21_vae_decoder("device_memory_vae", bench::VaeWeightValues::zeros)) {}
    ~File() {
      std::error_code ec;
      std::filesystem::remove(path, ec);
    }
  };
  static const File file;
  return file.path;
}

// The Wan 2.1 VAE decoder on be's device, computing in `dtype` (the pipeline: f32).
WanVae load_vae(Backend& be, DType dtype) {
  const WeightStore store = WeightStore::open(vae_file());
  return WanVae::from_store(store, be, {.config = VaeConfig::wan21(), .compute = dtype, .encoder = false});
}

// ---------------------------------------------------------------- the pipeline's stages

struct TextContext {
  Tensor cond, uncond, batched;  // on the device, as lib/pipeline/text_conditioning.cpp leaves them
};

TextContext upload_text(Backend& be, int64_t tokens, int64_t dim) {
  TextContext t;
  t.cond = bench::random_signed_tensor({1, tokens, dim}, 3, DType::bf16).to(be.device());
  t.uncond = bench::random_signed_tensor({1, tokens, dim}, 4, DType::bf16).to(be.device());
  t.batched = ops::concat(be, {&t.cond, &t.uncond}, 0);
  return t;
}

// One denoising forward as lib/pipeline/denoise.cpp runs it: host latents x [16, F, h, w],
// duplicated on the host into a batch of 2 with CFG, the output back on the host.
Tensor denoise_forward(Backend& be, const WanTransformer& dit, const Tensor& x, const TextContext& text, bool cfg) {
  const Shape one{1, x.dim(0), x.dim(1), x.dim(2), x.dim(3)};
  if (!cfg) return dit.forward(be, x.reshape(one), std::vector<float>{kTimestep}, text.cond);
  static const std::unique_ptr<Backend> host = make_cpu_backend({.threads = 2});
  const Tensor both = ops::concat(*host, {&x, &x}, 0).reshape({2, x.dim(0), x.dim(1), x.dim(2), x.dim(3)});
  return dit.forward(be, both, std::vector<float>{kTimestep, kTimestep}, text.batched);
}

// lib/pipeline/decode.cpp's path: host latents [16, F, h, w] → device, denormalised, decoded one
// latent frame per chunk; returns the number of frames the sink received.
int64_t decode(Backend& be, const WanVae& vae, const Tensor& latents) {
  const Tensor on_device = latents.to(be.device());
  const Tensor z = denormalize_latents(be, on_device, vae.config());
  int64_t frames = 0;
  vae.decode(
      z, [&](const Tensor& chunk, int64_t) { frames += chunk.dim(1); }, 1);
  return frames;
}

// ---------------------------------------------------------------- measured runs

struct StageResult {
  uint64_t peak_above_start = 0;      // raw bytes
  int64_t end_delta = 0;              // live bytes after the run minus before
  uint64_t peak = 0, peak_class = 0;  // absolute (resident included); accounting runs only
  std::vector<std::string> trace;
  std::map<std::string, uint64_t> counts;
  uint64_t ops = 0;
  uint64_t count(const char* op) const {
    const auto it = counts.find(op);
    return it == counts.end() ? 0 : it->second;
  }
  // 2 attention ops (self, cross) and at least 10 linear ops (q, k, v, o twice, the FFN's two) per layer.
  bool saw_every_layer(int64_t layers) const {
    return count("attention") == 2 * uint64_t(layers) && count("linear") >= 10 * uint64_t(layers);
  }
};

struct Devices {
  AccountingDevice& memory = AccountingDevice::install();
  AccountingBackend backend{memory};
  test::EmulatedDeviceBackend emulated{2};  // installs the emulated memory: make ours current again
  Devices() { memory.make_current(); }
};

Devices& devices() {
  static Devices* d = new Devices();  // never destroyed: tensors may outlive static destructors
  return *d;
}

// Runs fn() on the accounting backend without arithmetic, from a fresh peak.
template <class Fn>
StageResult account(Fn&& fn) {
  Devices& d = devices();
  d.backend.clear();
  d.memory.reset_peak();
  const AccountingStats before = d.memory.stats();
  fn();
  const AccountingStats after = d.memory.stats();
  StageResult r;
  r.peak_above_start = after.peak_bytes - before.live_bytes;
  r.end_delta = int64_t(after.live_bytes) - int64_t(before.live_bytes);
  r.peak = after.peak_bytes;
  r.peak_class = after.peak_class_bytes;
  r.trace = d.backend.trace();
  r.counts = d.backend.op_counts();
  r.ops = d.backend.op_count();
  return r;
}

// Runs fn() computing: the ops on the emulated device's CPU kernels, new device memory from
// the emulated memory (its ledger), the accounting backend in front only counting.
template <class Fn>
StageResult compute(Fn&& fn) {
  Devices& d = devices();
  test::EmulatedDevice& emulated = test::EmulatedDevice::install();
  register_device_memory(DeviceType::cuda, &emulated);
  d.backend.clear();
  d.backend.set_compute(&d.emulated);
  emulated.ledger().reset_transfers();
  const int64_t start = emulated.ledger().live_bytes.load();
  StageResult r;
  try {
    fn();
  } catch (...) {
    d.backend.set_compute(nullptr);
    d.memory.make_current();
    throw;
  }
  d.backend.set_compute(nullptr);
  d.memory.make_current();
  r.peak_above_start = uint64_t(emulated.ledger().peak_bytes.load() - start);
  r.end_delta = emulated.ledger().live_bytes.load() - start;
  r.trace = d.backend.trace();
  r.counts = d.backend.op_counts();
  r.ops = d.backend.op_count();
  return r;
}

// "" when the computing and the accounting run have the same plan; else what differs.
std::string same_plan(const char* what, const StageResult& computed, const StageResult& accounted) {
  const std::string w = std::string(what) + ": ";
  if (computed.trace != accounted.trace) {
    size_t i = 0;
    while (i < computed.trace.size() && i < accounted.trace.size() && computed.trace[i] == accounted.trace[i]) ++i;
    return w + "the ops differ at op " + std::to_string(i) +
           " (computing: " + (i < computed.trace.size() ? computed.trace[i] : "end") +
           ", accounting: " + (i < accounted.trace.size() ? accounted.trace[i] : "end") + ")";
  }
  if (computed.peak_above_start != accounted.peak_above_start)
    return w + "device peak above the start " + std::to_string(computed.peak_above_start) + " bytes computing, " +
           std::to_string(accounted.peak_above_start) + " accounting";
  if (computed.end_delta != 0 || accounted.end_delta != 0)
    return w + "the device holds " + std::to_string(computed.end_delta) + " (computing) / " +
           std::to_string(accounted.end_delta) + " (accounting) more bytes after the run than before";
  return "";
}

uint64_t rope_bytes(const WanConfig& cfg, int64_t tokens) { return 2 * uint64_t(tokens) * uint64_t(cfg.head_dim) * 4; }

// ---------------------------------------------------------------- checks

struct Setup {
  std::string error;  // a failed check: every case reports it

  Setup() {
    try {
      error = check_transformer();
      for (DType dtype : {DType::f32, DType::bf16})
        if (error.empty()) error = check_vae(dtype);
    } catch (const std::exception& e) {
      error = std::string("plan check: ") + e.what();
    }
  }

  // A 2-layer transformer with small widths: computing (emulated device) vs accounting.
  static std::string check_transformer() {
    Devices& d = devices();
    d.memory.set_tag("check");
    const WanConfig cfg = bench::wan_t2v_config(256, 2, 2, 512);
    auto [on_cpu, on_device] = random_transformers(cfg);
    const Tensor x = Rng(11).normal({16, 3, 16, 16});  // 3·8·8 = 192 tokens
    const int64_t tokens = 192, text_tokens = 16;
    TextContext text;  // computed: the batch is a concat on the device
    (void)compute([&] { text = upload_text(d.backend, text_tokens, kTextDim); });
    for (bool cfg_batch : {true, false}) {
      const char* what = cfg_batch ? "transformer forward, batch 2" : "transformer forward, batch 1";
      if (cfg_batch) {  // the first forward caches the RoPE tables of this grid on the device: exactly those stay
        const StageResult warm = account([&] { denoise_forward(d.backend, on_device, x, text, true); });
        if (warm.end_delta != int64_t(rope_bytes(cfg, tokens)))
          return std::string(what) + ": the first forward left " + std::to_string(warm.end_delta) +
                 " bytes on the device; expected the RoPE tables' " + std::to_string(rope_bytes(cfg, tokens));
      }
      Tensor computed_out;
      const StageResult computed =
          compute([&] { computed_out = denoise_forward(d.backend, on_device, x, text, cfg_batch); });
      const StageResult accounted = account([&] { denoise_forward(d.backend, on_device, x, text, cfg_batch); });
      if (std::string e = same_plan(what, computed, accounted); !e.empty()) return e;
      if (!accounted.saw_every_layer(cfg.layers))
        return std::string(what) + ": expected 2 attention and at least 10 linear ops per layer, saw " +
               std::to_string(accounted.count("attention")) + " and " + std::to_string(accounted.count("linear"));
      // The computing run is the real forward: the CPU backend's result, bit for bit.
      auto cpu = make_cpu_backend({.threads = 2});
      TextContext host{text.cond.to(Device::cpu()), text.uncond.to(Device::cpu()), Tensor()};
      host.batched = ops::concat(*cpu, {&host.cond, &host.uncond}, 0);
      const Tensor ref = denoise_forward(*cpu, on_cpu, x, host, cfg_batch);
      const double err = bench::relative_l2(computed_out.to_floats(), ref.to_floats());
      if (!(err == 0.0))
        return std::string(what) + ": the emulated device's result differs from the CPU's, relative L2 " +
               std::to_string(err);
    }
    return "";
  }

  // The Wan 2.1 VAE decoder computing in `dtype`: a 3-chunk decode computing vs accounting.
  static std::string check_vae(DType dtype) {
    Devices& d = devices();
    d.memory.set_tag("check");
    const WanVae vae = load_vae(d.backend, dtype);
    const Tensor z = Rng(21).normal({16, 3, 4, 4});
    const std::string what = "VAE decode (" + std::string(dtype_name(dtype)) + ") of latents [16, 3, 4, 4]";
    int64_t frames_computed = 0, frames_accounted = 0;
    const StageResult computed = compute([&] { frames_computed = decode(d.backend, vae, z); });
    const StageResult accounted = account([&] { frames_accounted = decode(d.backend, vae, z); });
    if (std::string e = same_plan(what.c_str(), computed, accounted); !e.empty()) return e;
    if (frames_computed != 9 || frames_accounted != 9 || accounted.count("conv3d") == 0)
      return what + ": " + std::to_string(frames_accounted) + " frames, expected 9";
    return "";
  }
};

Setup& setup() {
  static Setup* s = new Setup();
  return *s;
}

// ---------------------------------------------------------------- cases

struct Case {
  std::string model;
  WanConfig cfg;
  int64_t height, width, frames;
  DType vae = DType::f32;  // the VAE's compute dtype (the pipeline: f32)
};

// Bytes per tag ("dit weights", "step", ...) and the largest blocks at the last peak, to stderr.
void report_peak(const std::string& label, double peak_gb) {
  AccountingDevice& m = devices().memory;
  const std::vector<bench::AccountedBlock> blocks = m.blocks_at_peak(SIZE_MAX);
  std::map<std::string, uint64_t> per_tag;
  for (const auto& b : blocks) per_tag[b.what.substr(0, b.what.find(':'))] += b.bytes;
  std::fprintf(stderr, "%s: peak %.3f GB =", label.c_str(), peak_gb);
  for (const auto& [tag, bytes] : per_tag) std::fprintf(stderr, " %s %.3f GB;", tag.c_str(), double(bytes) / kGB);
  std::fprintf(stderr, "\n  largest live blocks at the peak:\n");
  const char* top_env = std::getenv("REEL_BENCH_MEMORY_TOP");
  const size_t top = top_env ? size_t(std::strtoul(top_env, nullptr, 10)) : 10;
  for (size_t i = 0; i < blocks.size() && i < top; ++i)
    std::fprintf(stderr, "    %8.3f GB  %s\n", double(blocks[i].bytes) / kGB, blocks[i].what.c_str());
}

void set_stage_counters(benchmark::State& state, const char* name, const StageResult& r) {
  const std::string n(name);
  state.counters[n + "_peak_gb"] = double(r.peak) / kGB;
  state.counters[n + "_peak_class_gb"] = double(r.peak_class) / kGB;
  state.counters[n + "_ops"] = double(r.ops);
}

void bench_memory_plan(benchmark::State& state, const Case& c) {
  Setup& s = setup();
  if (!s.error.empty()) {
    state.SkipWithError(s.error.c_str());
    return;
  }
  Devices& d = devices();
  AccountingDevice& m = d.memory;
  const std::string label = c.model + " " + std::to_string(c.height) + "x" + std::to_string(c.width) + "x" +
                            std::to_string(c.frames) + " (VAE " + std::string(dtype_name(c.vae)) + ")";
  const int64_t f = (c.frames - 1) / 4 + 1, h = c.height / 8, w = c.width / 8;
  const int64_t tokens = f * (h / 2) * (w / 2);
  std::string error;
  for (auto _ : state) {
    try {
      m.release_cached();
      const uint64_t start = m.stats().live_bytes;
      m.reset_peak();
      uint64_t dit_bytes = 0, vae_bytes = 0, text_bytes = 0, max_scratch = 0;
      StageResult step, nocfg, dec;
      {
        m.set_tag("vae weights");
        const WanVae vae = load_vae(d.backend, c.vae);
        vae_bytes = m.stats().live_bytes - start;
        m.set_tag("dit weights");
        const WanTransformer dit = empty_transformer(c.cfg);
        dit_bytes = m.stats().live_bytes - start - vae_bytes;
        m.set_tag("text context");
        const TextContext text = upload_text(d.backend, kTextTokens, kTextDim);
        text_bytes = m.stats().live_bytes - start - vae_bytes - dit_bytes;
        const Tensor x = Rng(1).normal({16, f, h, w});  // the sampler's latents, on the host

        d.backend.reset_max_scratch();
        m.set_tag("step");
        step = account([&] { denoise_forward(d.backend, dit, x, text, true); });
        report_peak(label + " step (CFG batch 2)", double(step.peak) / kGB);
        if (step.end_delta != int64_t(rope_bytes(c.cfg, tokens)))
          error = "step: the device holds " + std::to_string(step.end_delta) +
                  " more bytes after it; expected the RoPE tables' " + std::to_string(rope_bytes(c.cfg, tokens));
        m.set_tag("step without CFG batch");
        nocfg = account([&] { denoise_forward(d.backend, dit, x, text, false); });
        if (error.empty() && nocfg.end_delta != 0)
          error = "step without CFG batch: leaked " + std::to_string(nocfg.end_delta) + " bytes";
        for (const StageResult* r : {&step, &nocfg})
          if (error.empty() && !r->saw_every_layer(c.cfg.layers))
            error = "step: expected 2 attention and at least 10 linear ops per layer";

        m.set_tag("decode");
        int64_t frames = 0;
        dec = account([&] { frames = decode(d.backend, vae, x); });
        report_peak(label + " decode", double(dec.peak) / kGB);
        if (error.empty() && dec.end_delta != 0) error = "decode: leaked " + std::to_string(dec.end_delta) + " bytes";
        if (error.empty() && frames != c.frames)
          error = "decode: " + std::to_string(frames) + " frames, expected " + std::to_string(c.frames);
        max_scratch = d.backend.max_scratch_bytes();
      }
      if (error.empty() && m.stats().live_bytes != start)
        error =
            "the case left " + std::to_string(int64_t(m.stats().live_bytes) - int64_t(start)) + " bytes on the device";
      const AccountingStats all = m.stats();
      state.counters["dit_weights_gb"] = double(dit_bytes) / kGB;
      state.counters["vae_weights_gb"] = double(vae_bytes) / kGB;
      state.counters["text_gb"] = double(text_bytes) / kGB;
      state.counters["resident_gb"] = double(dit_bytes + vae_bytes + text_bytes) / kGB;
      set_stage_counters(state, "step", step);
      set_stage_counters(state, "step_nocfg", nocfg);
      set_stage_counters(state, "decode", dec);
      // With the transformer's weights off the device while decoding (they are constant through it).
      state.counters["decode_peak_dit_offloaded_gb"] = double(dec.peak - dit_bytes) / kGB;
      state.counters["peak_gb"] = double(std::max({step.peak, nocfg.peak, dec.peak})) / kGB;
      state.counters["peak_class_gb"] = double(std::max({step.peak_class, nocfg.peak_class, dec.peak_class})) / kGB;
      state.counters["peak_reserved_gb"] = double(all.peak_reserved_bytes) / kGB;
      state.counters["max_op_scratch_gb"] = double(max_scratch) / kGB;
      state.counters["tokens"] = double(tokens);
      state.counters["layers"] = double(c.cfg.layers);
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  if (!error.empty()) state.SkipWithError(error.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext(
      "memory_plan",
      "allocation plan measured on an accounting device (no arithmetic); excludes cuBLASLt workspace (32 MiB), "
      "cuDNN convolution workspaces, attention workspaces (cudaMallocAsync) and the CUDA context");
  benchmark::AddCustomContext("pipeline",
                              "Wan 2.1 T2V, text encoder off the GPU, bf16 transformer, VAE decoder (f32 as the "
                              "pipeline runs it; vae_bf16: bf16) one latent frame per chunk, CFG in one batch of 2, "
                              "512 text tokens");
  static const Case cases[] = {
      {"t2v_1.3b", bench::wan_t2v_1_3b(), 480, 832, 81},
      {"t2v_1.3b", bench::wan_t2v_1_3b(), 480, 832, 81, DType::bf16},
      {"t2v_14b", bench::wan_t2v_14b(), 480, 832, 81},
      {"t2v_14b", bench::wan_t2v_14b(), 720, 1280, 81},
  };
  for (const Case& c : cases)
    benchmark::RegisterBenchmark(
        ("memory_plan/" + c.model + "/bf16/" + std::to_string(c.height) + "x" + std::to_string(c.width) + "x" +
         std::to_string(c.frames) + "/vae_" + std::string(dtype_name(c.vae)))
            .c_str(),
        [&c](benchmark::State& s) { bench_memory_plan(s, c); })
        ->Iterations(1)
        ->Unit(benchmark::kSecond);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
