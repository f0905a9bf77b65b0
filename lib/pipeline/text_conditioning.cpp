// The text stage: prompt (and negative prompt) → umT5 embeddings, or the caller's embeddings,
// as the transformer's context (wan.md §4.3: 512 rows, zero past each prompt, in the
// transformer's dtype).
#include <chrono>

#include "pipeline/pipeline_impl.hpp"
#include "reel/ops.hpp"

namespace reel {

namespace pipeline {

namespace {

// [T, D] or [1, T, D] → [1, T, D] in `dtype` on the backend's device.
Tensor as_context(Backend& be, const Tensor& t, DType dtype) {
  Tensor x = t.rank() == 2 ? t.reshape({1, t.dim(0), t.dim(1)}) : t;
  if (x.dtype() != dtype) x = x.to(dtype);
  if (!(x.device() == be.device())) x = x.to(be.device());
  return x;
}

}  // namespace

Tensor encode_prompts(const Pipeline::Impl& p, std::span<const std::string> prompts) {
  require(p.text_encoder && p.tokenizer, StatusCode::invalid_argument,
          "this model has no text encoder and tokenizer loaded: pass prompt embeddings instead");
  require(!prompts.empty(), StatusCode::invalid_argument, "encode_prompts: no prompts given");
  std::vector<TokenizedPrompt> ids;
  ids.reserve(prompts.size());
  for (const std::string& s : prompts) ids.push_back(p.tokenizer->encode(s));  // 512 ids, wan.md §4.3
  return p.text_encoder->encode(*p.text_backend, ids);
}

TextContext text_context(const Pipeline::Impl& p, const GenerateRequest& r, const Resolved& rs, Run& run) {
  Backend& be = *p.backend;
  const DType act = p.transformer->activation_dtype();
  std::vector<std::string> prompts;
  const bool encode_cond = !r.prompt_embeds.defined();
  const bool encode_uncond = rs.cfg && !r.negative_embeds.defined();
  if (encode_cond) prompts.push_back(r.prompt);
  if (encode_uncond) prompts.push_back(r.negative_prompt);

  Tensor encoded;
  if (!prompts.empty()) {
    run.begin_stage("text", 1);
    const auto start = std::chrono::steady_clock::now();
    encoded = encode_prompts(p, prompts);
    require_finite(encoded, "the text encoder's prompt embeddings");
    run.step_done(1, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    run.end_stage();
  }
  TextContext c;
  int next = 0;
  c.cond = encode_cond ? as_context(be, encoded.select(next++), act) : as_context(be, r.prompt_embeds, act);
  if (rs.cfg)
    c.uncond = encode_uncond ? as_context(be, encoded.select(next++), act) : as_context(be, r.negative_embeds, act);
  if (c.uncond.defined() && c.uncond.dim(1) == c.cond.dim(1)) c.batched = ops::concat(be, {&c.cond, &c.uncond}, 0);
  return c;
}

}  // namespace pipeline

Tensor Pipeline::encode_prompts(std::span<const std::string> prompts) const {
  return pipeline::encode_prompts(*impl_, prompts);
}

}  // namespace reel
