// Finding a Wan model's components (diffusers folder or explicit files) and reading the
// pipeline-level JSON files: model_index.json, scheduler_config.json, reel_defaults.json (the
// VAE reads its own config.json: lib/vae/vae_config_json.cpp).
#include "pipeline/model_files.hpp"

#include <cmath>
#include <fstream>
#include <sstream>

#include "reel/sampler.hpp"
#include "reel/schedule.hpp"
#include "reel/weights.hpp"
#include "vae/vae_model.hpp"
#include "weights/strict_json.hpp"

namespace reel::pipeline {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

bool path_exists(const fs::path& p) {
  std::error_code ec;
  return fs::exists(p, ec);
}
bool is_folder(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}

json read_json(const fs::path& path, const char* what) { return detail::read_json_file(path, what); }

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string s;
  for (const std::string& x : v) s += (s.empty() ? "" : sep) + x;
  return s;
}

// Pickle files in a folder: the original Wan release ships its VAE and text encoder that way.
std::vector<std::string> pickle_files(const fs::path& folder) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(folder, ec)) {
    const std::string ext = e.path().extension().string();
    if (ext == ".pth" || ext == ".pt" || ext == ".ckpt" || ext == ".bin") out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

[[noreturn]] void not_a_model_folder(const fs::path& folder) {
  const std::vector<std::string> pickles = pickle_files(folder);
  if (!pickles.empty())
    throw Error(StatusCode::unsupported,
                folder.string() + " looks like an original Wan release (pickle files: " + join(pickles, ", ") +
                    "); reel reads safetensors only. Use the diffusers repository instead (e.g. "
                    "Wan-AI/Wan2.1-T2V-1.3B-Diffusers), or pass the components as files: the transformer's "
                    "diffusion_pytorch_model.safetensors plus a safetensors VAE and umT5 text encoder (e.g. "
                    "Comfy-Org/Wan_2.1_ComfyUI_repackaged: split_files/vae/wan_2.1_vae.safetensors, "
                    "split_files/text_encoders/umt5_xxl_fp16.safetensors) and the tokenizer folder "
                    "(google/umt5-xxl spiece.model)");
  throw Error(StatusCode::bad_format,
              folder.string() + " is not a diffusers Wan model folder: it has neither model_index.json nor "
                                "transformer/ (expected model_index.json, transformer/, vae/, text_encoder/, "
                                "tokenizer/, scheduler/)");
}

bool listed_null(const ModelIndex& index, const std::string& name) {
  return std::find(index.null_components.begin(), index.null_components.end(), name) != index.null_components.end();
}

}  // namespace

ModelIndex read_model_index(const fs::path& path) {
  const json j = read_json(path, "model_index.json");
  ModelIndex m;
  m.present = true;
  if (j.contains("_class_name") && j["_class_name"].is_string()) m.class_name = j["_class_name"].get<std::string>();
  if (j.contains("expand_timesteps") && !j["expand_timesteps"].is_null()) {
    if (!j["expand_timesteps"].is_boolean())
      throw Error(StatusCode::bad_format, path.string() + ": 'expand_timesteps' must be true or false");
    m.expand_timesteps = j["expand_timesteps"].get<bool>();
  }
  if (j.contains("boundary_ratio") && !j["boundary_ratio"].is_null()) {
    const json& b = j["boundary_ratio"];
    if (!b.is_number() || !(b.get<double>() > 0.0 && b.get<double>() < 1.0))
      throw Error(StatusCode::bad_format, path.string() + ": 'boundary_ratio' must be a number in (0, 1)");
    m.boundary_ratio = float(b.get<double>());
  }
  for (const auto& [key, value] : j.items())
    if (value.is_array() && value.size() == 2 && value[0].is_null() && value[1].is_null())
      m.null_components.push_back(key);
  return m;
}

void apply_generation_defaults(const fs::path& path, PipelineDefaults& d) {
  const json j = read_json(path, "generation defaults (reel_defaults.json)");
  const std::string where = path.string() + ": ";
  auto number = [&](const std::string& key, double lo, double hi, bool integer) {
    const json& v = j[key];
    if (!v.is_number() || !(v.get<double>() >= lo && v.get<double>() <= hi) ||
        (integer && v.get<double>() != std::floor(v.get<double>())))
      throw Error(StatusCode::bad_format, where + "'" + key + "' must be " + (integer ? "an integer" : "a number") +
                                              " in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return v.get<double>();
  };
  for (const auto& [key, value] : j.items()) {
    if (key == "width") d.width = int(number(key, 16, 16384, true));
    else if (key == "height") d.height = int(number(key, 16, 16384, true));
    else if (key == "frames") d.frames = int(number(key, 1, 10000, true));
    else if (key == "steps") d.steps = int(number(key, 1, 1000, true));
    else if (key == "guidance") d.guidance = float(number(key, 0, 100, false));
    else if (key == "shift") d.shift = float(number(key, 1e-3, 1000, false));
    else if (key == "fps") d.fps = number(key, 1e-3, 1000, false);
    else if (key.empty() || key[0] != '_')
      throw Error(StatusCode::bad_format, where + "unknown key '" + key +
                                              "' (known: width, height, frames, steps, guidance, shift, fps)");
  }
}

PipelineDefaults model_defaults(WanVariant variant, bool two_experts, const ModelFiles& files,
                                const SchedulerSettings& scheduler) {
  PipelineDefaults d = variant_defaults(variant, two_experts, files.index, scheduler);
  if (!files.generation_defaults.empty()) apply_generation_defaults(files.generation_defaults, d);
  return d;
}

SchedulerSettings read_scheduler_config(const fs::path& path) {
  const json j = read_json(path, "scheduler config");
  SchedulerSettings s;
  s.present = true;
  const std::string where = path.string() + ": ";
  auto str = [&](const char* key, const char* fallback) {
    return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string(fallback);
  };
  auto boolean = [&](const char* key, bool fallback) {
    return j.contains(key) && j[key].is_boolean() ? j[key].get<bool>() : fallback;
  };
  auto number = [&](const char* key) -> std::optional<double> {
    if (!j.contains(key) || j[key].is_null()) return std::nullopt;
    if (!j[key].is_number()) throw Error(StatusCode::bad_format, where + "'" + key + "' must be a number");
    return j[key].get<double>();
  };
  if (auto n = number("num_train_timesteps")) {
    if (!(*n >= 1 && *n <= 100000 && *n == std::floor(*n)))
      throw Error(StatusCode::bad_format, where + "'num_train_timesteps' must be a positive integer");
    s.num_train_timesteps = int(*n);
  }
  auto check_shift = [&](std::optional<double> v, const char* key) {
    if (v && !(*v > 0 && *v < 1000)) throw Error(StatusCode::bad_format, where + "'" + key + "' must be in (0, 1000)");
    if (v) s.shift = float(*v);
  };
  const std::string cls = str("_class_name", "");
  const std::string trained = s.num_train_timesteps == 1000 ? "" : "num_train_timesteps=" + std::to_string(s.num_train_timesteps);
  auto with = [](std::string name, const std::string& opts) { return opts.empty() ? name : name + ":" + opts; };
  if (cls == "UniPCMultistepScheduler") {
    if (str("prediction_type", "epsilon") != "flow_prediction" || !boolean("use_flow_sigmas", false))
      throw Error(StatusCode::unsupported, where + "UniPCMultistepScheduler without prediction_type "
                                                   "\"flow_prediction\" and use_flow_sigmas is not a Wan scheduler");
    check_shift(number("flow_shift"), "flow_shift");
    std::vector<std::string> opts;
    const std::optional<double> order = number("solver_order");
    if (order && *order != 2) opts.push_back("order=" + std::to_string(int(*order)));
    const std::string type = str("solver_type", "bh2");
    if (type != "bh2") opts.push_back("variant=" + type);
    if (!boolean("lower_order_final", true)) opts.push_back("lower_order_final=false");
    if (!boolean("predict_x0", true))
      s.notes.push_back(where + "predict_x0 false is not reproduced (reel's UniPC predicts x0)");
    if (j.contains("disable_corrector") && j["disable_corrector"].is_array() && !j["disable_corrector"].empty())
      s.notes.push_back(where + "disable_corrector lists steps; reel runs the corrector on every step");
    if (str("final_sigmas_type", "zero") != "zero")
      s.notes.push_back(where + "final_sigmas_type \"" + str("final_sigmas_type", "") + "\" is treated as \"zero\"");
    s.sampler = with("unipc", join(opts, ","));
    s.schedule = with("flow_unipc", trained);
  } else if (cls == "FlowMatchEulerDiscreteScheduler") {
    check_shift(number("shift"), "shift");
    s.sampler = "euler";
    s.schedule = with("flow_euler", trained);
  } else if (cls == "DPMSolverMultistepScheduler") {
    if (str("prediction_type", "epsilon") != "flow_prediction" || !boolean("use_flow_sigmas", false))
      throw Error(StatusCode::unsupported, where + "DPMSolverMultistepScheduler without flow sigmas is not a Wan scheduler");
    check_shift(number("flow_shift"), "flow_shift");
    s.sampler = boolean("lower_order_final", true) ? "dpmpp_2m" : "dpmpp_2m:lower_order_final=false";
    s.schedule = with("flow_dpm", trained);
  } else {
    s.notes.push_back(where + "scheduler \"" + cls + "\" is not one reel knows; using UniPC (flow)");
    check_shift(number("flow_shift"), "flow_shift");
    s.schedule = with("flow_unipc", trained);
  }
  // Built once here as generate() builds them, so load and inspect refuse what a request would
  // (solver_order 99, solver_type "bh9").
  if (!s.sampler.empty() || !s.schedule.empty()) {
    try {
      if (!s.sampler.empty()) (void)make_sampler(s.sampler);
      if (!s.schedule.empty()) (void)make_schedule(s.schedule, 2);
    } catch (const Error& e) {
      throw Error(StatusCode::bad_format, where + e.what());
    }
  }
  return s;
}

ModelFiles locate_model_files(const PipelineLoadOptions& o) {
  ModelFiles f;
  f.folder = o.folder;
  if (!o.folder.empty()) {
    if (!path_exists(o.folder)) throw Error(StatusCode::not_found, "model folder " + o.folder.string() + " does not exist");
    if (!is_folder(o.folder))
      throw Error(StatusCode::invalid_argument,
                  o.folder.string() + " is a file, not a model folder: pass a single-file checkpoint as the "
                                      "transformer (with the VAE, text encoder and tokenizer paths beside it)");
    const fs::path index = o.folder / "model_index.json";
    if (path_exists(index)) f.index = read_model_index(index);
    else if (!is_folder(o.folder / "transformer") && o.transformer.empty()) not_a_model_folder(o.folder);
    const fs::path sched = o.folder / "scheduler" / "scheduler_config.json";
    if (path_exists(sched)) f.scheduler_config = sched;
    const fs::path defaults = o.folder / "reel_defaults.json";
    if (path_exists(defaults)) f.generation_defaults = defaults;
  }
  // A component: the explicit path (must exist), else the folder's subfolder (when present
  // and not listed as null in model_index.json).
  auto component = [&](const fs::path& given, const char* sub, const char* what) -> fs::path {
    if (!given.empty()) {
      if (!path_exists(given)) throw Error(StatusCode::not_found, std::string(what) + " " + given.string() + " does not exist");
      return given;
    }
    if (o.folder.empty() || listed_null(f.index, sub)) return {};
    const fs::path p = o.folder / sub;
    return is_folder(p) ? p : fs::path();
  };
  f.transformer = component(o.transformer, "transformer", "transformer");
  f.transformer_2 = component(o.transformer_2, "transformer_2", "transformer_2");
  f.vae = component(o.vae, "vae", "VAE");
  f.text_encoder = o.load_text_encoder ? component(o.text_encoder, "text_encoder", "text encoder") : fs::path();
  f.tokenizer = component(o.tokenizer, "tokenizer", "tokenizer");
  if (o.load_image_encoder) {
    f.image_encoder = component(o.image_encoder, "image_encoder", "image encoder");
    f.image_processor = component(o.image_processor, "image_processor", "image processor");
    // A given encoder folder brings its preprocessing: preprocessor_config.json inside it (as
    // CLIP repositories ship it) or an image_processor/ beside it (a Wan repository's layout).
    if (!o.image_encoder.empty() && o.image_processor.empty() && is_folder(o.image_encoder)) {
      for (const fs::path& p : {o.image_encoder / "preprocessor_config.json",
                                o.image_encoder.parent_path() / "image_processor" / "preprocessor_config.json"})
        if (path_exists(p)) {
          f.image_processor = p;
          break;
        }
    }
  }

  if (o.folder.empty() && (o.transformer.empty() || o.vae.empty()))
    throw Error(StatusCode::invalid_argument,
                "no model folder given: then both the transformer and the VAE paths are needed");
  if (f.transformer.empty()) {
    if (!f.transformer_2.empty())
      throw Error(StatusCode::unsupported, o.folder.string() + ": only transformer_2/ is present; reel needs "
                                                               "transformer/ (the high-noise expert) too");
    throw Error(StatusCode::not_found, o.folder.string() + ": no transformer/ folder (a diffusers Wan model folder "
                                                           "holds transformer/, vae/, text_encoder/, tokenizer/, "
                                                           "scheduler/)");
  }
  if (f.vae.empty())
    throw Error(StatusCode::not_found, o.folder.string() + ": no vae/ folder; pass the VAE file explicitly "
                                                           "(e.g. wan_2.1_vae.safetensors) or use a complete diffusers folder");
  if (f.text_encoder.empty() && o.load_text_encoder)
    f.notes.push_back("no text encoder: prompts must be given as embeddings");
  else if (!f.text_encoder.empty() && f.tokenizer.empty())
    f.notes.push_back("no tokenizer (spiece.model): prompts must be given as embeddings");
  if (!o.folder.empty() && f.scheduler_config.empty())
    f.notes.push_back("no scheduler/scheduler_config.json: using UniPC (flow) with the variant's usual shift");
  return f;
}

}  // namespace reel::pipeline
