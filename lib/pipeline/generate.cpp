// Pipeline::generate: resolve the request, then the stages text → (encode) → denoise → decode.
#include "pipeline/pipeline_impl.hpp"

namespace reel {

GenerateResult Pipeline::generate(const GenerateRequest& request, GenerateObserver* observer) const {
  using namespace pipeline;
  const Impl& p = *impl_;
  Run run(observer, request.cancel);
  GenerateResult out;
  Resolved rs = resolve_request(p, request);
  for (const std::string& n : rs.notices) run.notice(n, out.notices);

  const TextContext text = text_context(p, request, rs, run);
  const Conditioning cond = image_condition(p, request, rs, run);
  out.latents = denoise(p, request, rs, text, cond, /*stream=*/0, run);
  decode_latents(p, out.latents, request.keep_float_frames, run, out);

  out.timings = run.timings();
  out.width = rs.width;
  out.height = rs.height;
  out.frames_count = rs.frames;
  out.steps = rs.steps;
  out.guidance = rs.guidance;
  out.shift = rs.shift;
  out.sampler = rs.sampler;
  out.schedule = rs.schedule;
  out.seed = request.seed;
  return out;
}

}  // namespace reel
