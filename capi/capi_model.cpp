// C API: model parameters, loading (over reel::Pipeline), freeing, describing.
#include <cmath>
#include <cstring>

#include "capi_internal.hpp"

namespace {

// The fields of reel_model_params version 1 (0.1.0 without the appended ones).
constexpr size_t kModelParamsV1 = offsetof(reel_model_params, precision) + sizeof(reel_precision);

// The caller may store any integer in the enum field: read it as one (loading an enum object
// that holds no enumerator is undefined behaviour in C++).
reel::PipelinePrecision precision_of(const reel_precision* field) {
  static_assert(sizeof(reel_precision) == sizeof(int32_t), "reel_precision is an int-sized enum");
  int32_t p = 0;
  std::memcpy(&p, field, sizeof p);
  switch (p) {
    case REEL_PRECISION_DEFAULT:
    case REEL_PRECISION_BF16: return reel::PipelinePrecision::bf16;
    case REEL_PRECISION_F32: return reel::PipelinePrecision::f32;
    default: break;
  }
  throw reel::Error(reel::StatusCode::invalid_argument,
                    "params->precision " + std::to_string(p) + " is not a reel_precision value");
}

// Appended fields are read only when the caller's struct holds them.
template <class T>
bool has_field(const reel_model_params* p, size_t offset) {
  return p->struct_size >= offset + sizeof(T);
}

void read_loras(const reel_model_params& p, reel::PipelineLoadOptions& o) {
  using namespace reel;
  require(p.lora_count >= 0 && p.lora_count <= 256, StatusCode::invalid_argument,
          "params->lora_count " + std::to_string(p.lora_count) + " is not in [0, 256]");
  if (p.lora_count == 0) return;
  capi::require_pointer(p.lora_paths, "params->lora_paths (with lora_count > 0)");
  for (int32_t i = 0; i < p.lora_count; ++i) {
    const std::string at = std::string("[").append(std::to_string(i)).append("]");
    capi::require_pointer(p.lora_paths[i], ("params->lora_paths" + at).c_str());
    LoraSpec spec{.path = p.lora_paths[i]};
    if (p.lora_strengths) {
      spec.strength = p.lora_strengths[i];
      require(std::isfinite(spec.strength), StatusCode::invalid_argument, "params->lora_strengths" + at + " is not finite");
    }
    if (p.lora_experts) {
      const int32_t e = p.lora_experts[i];
      require(e >= REEL_LORA_BOTH && e <= REEL_LORA_LOW_NOISE, StatusCode::invalid_argument,
              "params->lora_experts" + at + " = " + std::to_string(e) + " is not a reel_lora_expert value");
      spec.expert = e == REEL_LORA_HIGH_NOISE ? LoraExpert::high_noise
                    : e == REEL_LORA_LOW_NOISE ? LoraExpert::low_noise
                                               : LoraExpert::both;
    }
    o.loras.push_back(std::move(spec));
  }
  o.lora_mode = p.lora_runtime ? LoraMode::runtime : LoraMode::merge;
}

}  // namespace

extern "C" {

void reel_model_params_init(reel_model_params* params) {
  if (!params) return;
  std::memset(params, 0, sizeof *params);
  params->struct_size = sizeof *params;
  params->device = "cpu";
  params->threads = 0;
  params->precision = REEL_PRECISION_DEFAULT;
}

reel_status reel_model_load(const reel_model_params* params, reel_model** model) {
  return reel::capi::guarded("reel_model_load", [&] {
    using namespace reel;
    capi::require_pointer(params, "params");
    capi::require_pointer(model, "model (the output pointer)");
    capi::require_struct_size(params->struct_size, kModelParamsV1, "reel_model_params");
    PipelineLoadOptions o;
    if (params->path) o.folder = params->path;
    if (params->transformer_path) o.transformer = params->transformer_path;
    if (params->vae_path) o.vae = params->vae_path;
    if (params->text_encoder_path) o.text_encoder = params->text_encoder_path;
    if (params->tokenizer_path) o.tokenizer = params->tokenizer_path;
    if (has_field<const char*>(params, offsetof(reel_model_params, transformer_2_path)) && params->transformer_2_path)
      o.transformer_2 = params->transformer_2_path;
    require(params->path || (params->transformer_path && params->vae_path), StatusCode::invalid_argument,
            "params->path is NULL: give a model folder, or transformer_path and vae_path");
    o.device = Device::parse(params->device ? params->device : "cpu");
    if (has_field<const char*>(params, offsetof(reel_model_params, text_encoder_device)) &&
        params->text_encoder_device)
      o.text_encoder_device = Device::parse(params->text_encoder_device);
    if (has_field<const char*>(params, offsetof(reel_model_params, attention_kernel)) && params->attention_kernel)
      o.attention_kernel = params->attention_kernel;
    if (has_field<int32_t>(params, offsetof(reel_model_params, offload_transformer)))
      o.offload_transformer = params->offload_transformer != 0;
    if (has_field<const char*>(params, offsetof(reel_model_params, image_encoder_path)) && params->image_encoder_path)
      o.image_encoder = params->image_encoder_path;
    check_thread_count(params->threads, "params->threads");
    if (has_field<int32_t>(params, offsetof(reel_model_params, map_weights))) o.map_weights = params->map_weights != 0;
    if (has_field<int32_t>(params, offsetof(reel_model_params, lora_runtime))) read_loras(*params, o);
    if (has_field<const char*>(params, offsetof(reel_model_params, weight_type)) && params->weight_type &&
        params->weight_type[0])
      o.weight_format = parse_weight_format(params->weight_type);
    if (has_field<const char*>(params, offsetof(reel_model_params, preview_decoder_path)) &&
        params->preview_decoder_path)
      o.preview_decoder = params->preview_decoder_path;
    if (has_field<int32_t>(params, offsetof(reel_model_params, ring)) && params->communicator) {
      require(params->communicator->comm != nullptr, StatusCode::invalid_argument, "params->communicator holds no communicator");
      o.sequence_parallel = {params->communicator->comm, params->ulysses, params->ring};
    }
    o.threads = params->threads;
    o.precision = precision_of(&params->precision);
    auto loaded = std::make_unique<reel_model>(reel_model{Pipeline::load(o), {}});
    loaded->description = loaded->pipeline.info().description;
    *model = loaded.release();
  });
}

void reel_model_free(reel_model* model) { delete model; }

reel_status reel_communicator_mpi_world(reel_communicator** out) {
  return reel::capi::guarded("reel_communicator_mpi_world", [&] {
    reel::capi::require_pointer(out, "out (the output pointer)");
    *out = new reel_communicator{reel::mpi_world()};
  });
}

reel_status reel_communicator_from_mpi_handle(const void* handle, size_t handle_size, reel_communicator** out) {
  return reel::capi::guarded("reel_communicator_from_mpi_handle", [&] {
    reel::capi::require_pointer(out, "out (the output pointer)");
    *out = new reel_communicator{reel::mpi_communicator_from_handle(handle, handle_size)};
  });
}

int32_t reel_communicator_rank(const reel_communicator* comm) { return comm && comm->comm ? comm->comm->rank() : -1; }
int32_t reel_communicator_size(const reel_communicator* comm) { return comm && comm->comm ? comm->comm->size() : -1; }
void reel_communicator_free(reel_communicator* comm) { delete comm; }

const char* reel_model_describe(const reel_model* model) { return model ? model->description.c_str() : ""; }

size_t reel_model_note_count(const reel_model* model) { return model ? model->pipeline.info().notes.size() : 0; }

const char* reel_model_note(const reel_model* model, size_t index) {
  if (!model || index >= model->pipeline.info().notes.size()) return nullptr;
  return model->pipeline.info().notes[index].c_str();
}

}  // extern "C"
