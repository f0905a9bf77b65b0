// Pipeline::generate: resolve the request, then the stages text → (encode) → denoise → decode;
// and generate_variants: the same stages, the denoising of several seeds batched together.
// With sequence-parallel ranks every rank runs every stage but the decode, which rank 0 runs.
#include "pipeline/pipeline_impl.hpp"

namespace reel {

namespace {

// What ran, beside the frames.
void describe(const pipeline::Resolved& rs, uint64_t seed, GenerateResult& out) {
  out.width = rs.width;
  out.height = rs.height;
  out.frames_count = rs.frames;
  out.steps = rs.steps;
  out.guidance = rs.guidance;
  out.shift = rs.shift;
  out.sampler = rs.sampler;
  out.schedule = rs.schedule;
  out.seed = seed;
}

}  // namespace

GenerateResult Pipeline::generate(const GenerateRequest& request, GenerateObserver* observer) const {
  using namespace pipeline;
  const Impl& p = *impl_;
  Run run(observer, request.cancel, p.comm.get());
  GenerateResult out;
  Resolved rs = resolve_request(p, request);
  for (const std::string& n : rs.notices) run.notice(n, out.notices);

  const TextContext text = text_context(p, request, rs, run);
  const Conditioning cond = image_condition(p, request, rs, run);
  out.latents = denoise(p, request, rs, text, cond, /*stream=*/0, run, &out);
  run.on_root([&] { decode_latents(p, out.latents, request.keep_float_frames, run, out); });

  out.timings = run.timings();
  describe(rs, request.seed, out);
  return out;
}

std::vector<GenerateResult> Pipeline::generate_variants(const GenerateRequest& request, std::span<const uint64_t> seeds,
                                                        GenerateObserver* observer, int batch) const {
  using namespace pipeline;
  const Impl& p = *impl_;
  require(!seeds.empty() && seeds.size() <= size_t(kMaxVariants), StatusCode::invalid_argument,
          "variants: give 1 to " + std::to_string(kMaxVariants) + " seeds, got " + std::to_string(seeds.size()));
  require(batch >= 0, StatusCode::invalid_argument, "variants: batch must be >= 0 (0: as memory allows), got " +
                                                        std::to_string(batch));
  require(!request.initial_noise.defined(), StatusCode::invalid_argument,
          "variants: initial_noise is one variant's noise; variants draw theirs from their seeds");
  Run run(observer, request.cancel, p.comm.get());
  std::vector<std::string> notices;
  Resolved rs = resolve_request(p, request);
  for (const std::string& n : rs.notices) run.notice(n, notices);

  const TextContext text = text_context(p, request, rs, run);
  const Conditioning cond = image_condition(p, request, rs, run);
  const int group = variant_group(p, request, rs, int(seeds.size()), batch, run, notices);
  std::vector<GenerateResult> out = denoise_variants(p, request, rs, text, cond, seeds, group, run);
  for (size_t i = 0; i < seeds.size(); ++i) {
    run.on_root([&] { decode_latents(p, out[i].latents, request.keep_float_frames, run, out[i]); });
    out[i].notices = notices;
    describe(rs, seeds[i], out[i]);
  }
  for (GenerateResult& r : out) r.timings = run.timings();
  return out;
}

}  // namespace reel
