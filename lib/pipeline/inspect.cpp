// inspect_model: what a model folder or a checkpoint file holds (variant, configuration,
// tensors and dtypes), read from headers and shapes only, with every problem found listed.
#include <unistd.h>

#include <cctype>
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

#include "pipeline/model_files.hpp"
#include "pipeline/pipeline_impl.hpp"
#include "regular_file.hpp"
#include "reel/lora.hpp"
#include "reel/weights.hpp"
#include "text/umt5_model.hpp"
#include "vae/vae_model.hpp"

namespace reel {

namespace {

namespace fs = std::filesystem;
using pipeline::ModelFiles;

enum class Kind { transformer, vae, text_encoder, lora, unknown };

Kind classify(const WeightStore& store) {
  for (const std::string& n : store.names()) {
    const auto ends = [&](std::string_view s) { return n.size() >= s.size() && n.compare(n.size() - s.size(), s.size(), s) == 0; };
    if (ends(".lora_A.weight") || ends(".lora_down.weight") || ends(".diff") || ends(".diff_b")) return Kind::lora;
    if (ends("patch_embedding.weight")) return Kind::transformer;
    if (ends("decoder.conv_in.weight") || ends("decoder.conv1.weight")) return Kind::vae;
    if (ends("shared.weight") || ends("token_embedding.weight") || ends("embed_tokens.weight")) return Kind::text_encoder;
  }
  return Kind::unknown;
}

std::string vae_line(const VaeConfig& c) {
  std::ostringstream s;
  s << "z_dim " << c.z_dim << ", base_dim " << c.base_dim << ", decoder_base_dim " << c.decoder_base_dim << ", "
    << (c.is_residual ? "Wan 2.2 layout" : "Wan 2.1 layout") << ", ×" << c.spatial_factor() << " space ×"
    << c.temporal_factor() << " time" << (c.latents_mean.empty() ? ", no latent normalisation constants" : "");
  return s.str();
}

// `config_json` (may be empty): checked against the weights as Umt5Encoder::load checks it.
std::string umt5_line(const WeightStore& store, const fs::path& config_json) {
  const std::vector<std::string> names = store.names();
  const text::ShapeLookup shape_of = [&](const std::string& n) -> const Shape* {
    return store.contains(n) ? &store.info(n).shape : nullptr;
  };
  const Umt5Config c = text::umt5_config_from_lookup(
      names, shape_of, config_json.empty() ? text::Umt5ConfigHints{} : text::read_umt5_config_json(config_json));
  return "umT5 vocab " + std::to_string(c.vocab_size) + ", d_model " + std::to_string(c.d_model) + ", " +
         std::to_string(c.num_layers) + " layers, " + std::to_string(c.num_heads) + " heads × " + std::to_string(c.d_kv) +
         ", d_ff " + std::to_string(c.d_ff);
}

// The diffusers config.json of a component folder, or of the folder holding a file (it gives
// the transformer's head_dim); empty when there is none.
fs::path config_beside(const fs::path& path) {
  std::error_code ec;
  const fs::path dir = fs::is_directory(path, ec) ? path : path.parent_path();
  return fs::is_regular_file(dir / "config.json", ec) ? dir / "config.json" : fs::path();
}

// Runs fn, turning an Error into a problem line (prefixed by `what`).
template <class F>
bool attempt(ModelInspection& out, const std::string& what, F&& fn) {
  try {
    fn();
    return true;
  } catch (const Error& e) {
    out.problems.push_back(what + ": " + e.what());
  } catch (const std::exception& e) {
    out.problems.push_back(what + ": " + e.what());
  }
  return false;
}

// GGUF files are recognised by their magic, whatever they are called (as WeightStore does).
bool has_gguf_magic(const fs::path& path) {
  try {
    const detail::FileHandle f = detail::open_regular_file(path, "file");  // never blocks on a FIFO
    char magic[4] = {};
    return ::pread(f.fd(), magic, 4, 0) == 4 && std::string_view(magic, 4) == "GGUF";
  } catch (const Error&) {
    return false;  // the reader that follows names the problem
  }
}

// One problem per tensor holding NaN or infinity; each tensor read in f32, one at a time.
void scan_values(const WeightStore& store, const std::string& label, ModelInspection& out) {
  for (const std::string& name : store.names()) {
    const Tensor t = store.load(name, DType::f32);
    const float* x = t.data<float>();
    int64_t bad = 0, first = -1;
    for (int64_t i = 0; i < t.numel(); ++i)
      if (!std::isfinite(x[i])) {
        if (first < 0) first = i;
        ++bad;
      }
    if (bad > 0)
      out.problems.push_back(label + ": tensor '" + name + "' holds " + std::to_string(bad) +
                             " non-finite value(s) (NaN or inf; the first at element " + std::to_string(first) + ")");
  }
}

// A LoRA: layout, ranks and alphas, and which layers it adapts (block indices folded:
// "blocks.N.self_attn.q ×30").
void describe_lora(const WeightStore& store, const fs::path& path, ModelInspection& out) {
  const LoraInfo info = read_lora(store, path);
  std::map<float, int64_t> alphas;
  std::map<std::string, int64_t> layers;
  for (const LoraModule& m : info.modules) {
    if (m.alpha > 0) ++alphas[m.alpha];
    std::string folded = m.name;  // the block index after "blocks." / "blocks_" becomes N
    for (const char* head : {"blocks.", "blocks_"})
      if (const size_t at = folded.find(head); at != std::string::npos) {
        const size_t begin = at + 7;
        size_t end = begin;
        while (end < folded.size() && std::isdigit(static_cast<unsigned char>(folded[end]))) ++end;
        if (end > begin) folded.replace(begin, end - begin, "N");
      }
    ++layers[folded];
  }
  std::string alpha_text = alphas.empty() ? "none (scale 1)" : "";
  for (const auto& [a, n] : alphas) alpha_text += (alpha_text.empty() ? "" : ", ") + std::to_string(a).substr(0, 6) + " ×" + std::to_string(n);
  out.lines.push_back("lora: " + std::string(lora_layout_name(info.layout)) + " layout, " +
                      std::to_string(info.modules.size()) + " modules: " + std::to_string(info.low_rank_modules) +
                      " low-rank (max rank " + std::to_string(info.max_rank) + "), " +
                      std::to_string(info.delta_tensors) + " full-delta tensors (.diff/.diff_b)");
  out.lines.push_back("alpha: " + alpha_text);
  for (const auto& [layer, n] : layers) out.lines.push_back("adapts: " + layer + " ×" + std::to_string(n));
  for (const std::string& n : info.unrecognised)
    out.problems.push_back("tensor '" + n + "' is of no LoRA kind reel knows (DoRA, LoCon, ...): it would not be applied");
}

void inspect_file(const fs::path& path, ModelInspection& out, const InspectOptions& options) {
  out.kind = "file";
  if (path.filename() == "spiece.model") {
    out.kind = "tokenizer";
    attempt(out, "tokenizer", [&] {
      const Umt5Tokenizer tok = Umt5Tokenizer::open(path);
      out.lines.push_back("tokenizer: SentencePiece, " + std::to_string(tok.vocab_size()) + " ids (" +
                          std::to_string(tok.extra_ids()) + " sentinels)");
    });
    return;
  }
  std::optional<WeightStore> store;
  if (!attempt(out, path.filename().string(), [&] { store = WeightStore::open(path); })) return;
  if (options.scan_values) attempt(out, "scan", [&] { scan_values(*store, path.filename().string(), out); });
  out.kind = has_gguf_magic(path) ? "GGUF file" : "safetensors file";
  const Kind kind = classify(*store);
  if (kind == Kind::transformer) {
    out.kind = "transformer";
    attempt(out, "transformer", [&] {
      const WanConfig c = WanTransformer::read_config(*store, 0, config_beside(path));
      out.lines.push_back("transformer: " + c.str());
      out.lines.push_back("parameters: " + std::to_string(c.parameter_count()));
      const char* v = c.in_channels == 48 ? "Wan 2.2 TI2V (with the z 48 VAE)"
                      : c.in_channels == 36 ? (c.has_image_context() ? "Wan 2.1 I2V (needs a CLIP image encoder or CLIP features)" : "Wan 2.2 I2V-A14B expert")
                      : c.in_channels == 16 ? "text-to-video" : "unknown";
      out.lines.push_back("variant: " + std::string(v));
      if (c.in_channels == 48) out.variant = WanVariant::ti2v;
      else if (c.in_channels == 36) out.variant = WanVariant::i2v;
      else if (c.in_channels == 16) out.variant = WanVariant::t2v;
    });
  } else if (kind == Kind::vae) {
    out.kind = "vae";
    attempt(out, "vae", [&] { out.lines.push_back("vae: " + vae_line(vae::infer_vae_config(*store))); });
  } else if (kind == Kind::text_encoder) {
    out.kind = "text encoder";
    attempt(out, "text encoder", [&] { out.lines.push_back("text encoder: " + umt5_line(*store, text::umt5_config_json_for(path))); });
  } else if (kind == Kind::lora) {
    out.kind = "LoRA";
    attempt(out, "lora", [&] { describe_lora(*store, path, out); });
  } else {
    out.problems.push_back(path.string() + ": not a Wan transformer, Wan VAE, umT5 checkpoint or LoRA (no "
                                           "patch_embedding.weight, decoder.conv_in.weight, shared.weight or lora_A/lora_down/diff)");
  }
  std::map<std::string, int64_t> dtypes;
  for (const std::string& n : store->names()) ++dtypes[std::string(file_dtype_name(store->info(n).dtype))];
  std::string summary;
  for (const auto& [d, count] : dtypes) summary += (summary.empty() ? "" : ", ") + std::to_string(count) + " " + d;
  out.lines.push_back("tensors: " + std::to_string(store->size()) + " (" + summary + ")");
  for (const auto& [k, v] : store->metadata()) out.lines.push_back("metadata " + k + ": " + v.substr(0, 200));
  for (const std::string& n : store->names()) {
    const TensorInfo& t = store->info(n);
    out.lines.push_back("  " + n + " " + std::string(file_dtype_name(t.dtype)) + " " + t.shape.str());
  }
}

void inspect_folder(const fs::path& folder, ModelInspection& out, const InspectOptions& options) {
  out.kind = "model folder";
  ModelFiles files;
  PipelineLoadOptions load;
  load.folder = folder;
  if (!attempt(out, folder.string(), [&] { files = pipeline::locate_model_files(load); })) return;
  if (files.index.present) out.lines.push_back("model_index.json: " + files.index.class_name);
  for (const std::string& n : files.notes) out.problems.push_back(n);
  std::optional<WanConfig> t;
  attempt(out, "transformer", [&] {
    t = WanTransformer::read_config(WeightStore::open(files.transformer), 0, config_beside(files.transformer));
    out.lines.push_back("transformer: " + t->str() + " (" + std::to_string(t->parameter_count()) + " parameters)");
  });
  if (!files.transformer_2.empty())
    attempt(out, "transformer_2", [&] {
      const WanConfig c2 = WanTransformer::read_config(WeightStore::open(files.transformer_2), 0,
                                                       config_beside(files.transformer_2));
      out.lines.push_back("transformer_2: " + c2.str());
    });
  std::optional<VaeConfig> v;
  std::vector<std::string> notes;
  attempt(out, "vae", [&] {
    v = vae::read_vae_config(files.vae, &notes);
    out.lines.push_back("vae: " + vae_line(*v));
  });
  for (const std::string& n : notes) out.problems.push_back(n);
  if (!files.text_encoder.empty())
    attempt(out, "text encoder", [&] {
      out.lines.push_back("text encoder: " + umt5_line(WeightStore::open(files.text_encoder), text::umt5_config_json_for(files.text_encoder)));
    });
  if (!files.tokenizer.empty())
    attempt(out, "tokenizer", [&] {
      const Umt5Tokenizer tok = Umt5Tokenizer::open(files.tokenizer);
      out.lines.push_back("tokenizer: SentencePiece, " + std::to_string(tok.vocab_size()) + " ids");
    });
  if (!files.image_encoder.empty())
    attempt(out, "image encoder", [&] {
      const ClipVisionConfig c = ClipVisionEncoder::read_config(files.image_encoder);
      out.lines.push_back("image encoder: CLIP vision, hidden " + std::to_string(c.hidden_size) + ", " +
                          std::to_string(c.num_layers) + " layers, " + std::to_string(c.num_heads) + " heads, " +
                          std::to_string(c.image_size) + " px / patch " + std::to_string(c.patch_size) + " (" +
                          std::to_string(c.tokens()) + " tokens; hidden_states[-2] is the image context)");
    });
  if (!files.image_processor.empty())
    attempt(out, "image processor", [&] {
      const ClipImageProcessorConfig c = ClipImageProcessor::open(files.image_processor).config();
      out.lines.push_back("image processor: shortest edge " + std::to_string(c.shortest_edge) + ", crop " +
                          std::to_string(c.crop_width) + "x" + std::to_string(c.crop_height) + ", " +
                          (c.resample == ClipResample::bicubic ? "bicubic" : "lanczos"));
    });
  pipeline::SchedulerSettings sched;
  if (!files.scheduler_config.empty())
    attempt(out, "scheduler", [&] { sched = pipeline::read_scheduler_config(files.scheduler_config); });
  for (const std::string& n : sched.notes) out.problems.push_back(n);
  if (t && v)
    attempt(out, "variant", [&] {
      const WanVariant variant = pipeline::detect_variant(*t, *v);
      out.variant = variant;
      const PipelineDefaults d = pipeline::model_defaults(variant, !files.transformer_2.empty(), files, sched);
      out.lines.push_back("variant: " + std::string(wan_variant_name(variant)) + " (" +
                          std::string(pipeline::variant_label(variant)) + ")" +
                          (!t->has_image_context()        ? ""
                           : files.image_encoder.empty() ? ", needs CLIP image features: no image_encoder/ "
                                                           "(requests must carry image_context)"
                                                         : ", CLIP image features from image_encoder/"));
      std::ostringstream s;
      s << "defaults: " << d.width << "x" << d.height << ", " << d.frames << " frames, " << d.steps << " steps, guidance "
        << d.guidance << ", sampler " << d.sampler << ", schedule " << d.schedule << " (shift " << d.shift << "), "
        << d.fps << " fps";
      out.lines.push_back(s.str());
    });
  if (options.scan_values)
    for (const auto& component : {std::pair<const char*, const fs::path&>{"transformer", files.transformer},
                                  {"transformer_2", files.transformer_2},
                                  {"vae", files.vae},
                                  {"text encoder", files.text_encoder},
                                  {"image encoder", files.image_encoder}}) {
      const char* label = component.first;  // not structured bindings: clang < 16 cannot capture those
      const fs::path& path = component.second;
      if (!path.empty()) attempt(out, label, [&] { scan_values(WeightStore::open(path), label, out); });
    }
}

}  // namespace

ModelInspection inspect_model(const fs::path& path) { return inspect_model(path, InspectOptions{}); }

ModelInspection inspect_model(const fs::path& path, const InspectOptions& options) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error(StatusCode::not_found, path.string() + " does not exist");
  ModelInspection out;
  const bool model_folder = fs::is_directory(path, ec) &&
                            (fs::exists(path / "model_index.json", ec) || fs::is_directory(path / "transformer", ec));
  if (model_folder) inspect_folder(path, out, options);
  else inspect_file(path, out, options);
  return out;
}

}  // namespace reel
