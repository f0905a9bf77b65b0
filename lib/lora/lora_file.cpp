// read_lora: a LoRA safetensors file's tensors grouped into modules by their names, in any of
// the layouts of reel/lora.hpp. Nothing model-specific: which parameter a module changes is
// the model's business (lib/wan/wan_lora.cpp).
#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <optional>

#include "reel/lora.hpp"
#include "reel/status.hpp"
#include "reel/weights.hpp"

namespace reel {

namespace {

// Name prefixes of each layout, longest first; removed from the module names.
struct Prefix {
  std::string_view text;
  LoraLayout layout;
};
constexpr std::array<Prefix, 6> kPrefixes{{
    {"base_model.model.", LoraLayout::diffusers},  // a PEFT model's own state dict
    {"model.diffusion_model.", LoraLayout::original},
    {"diffusion_model.", LoraLayout::original},
    {"transformer.", LoraLayout::diffusers},
    {"lora_unet_", LoraLayout::kohya},
    {"unet.", LoraLayout::diffusers},
}};

// What a tensor is, from the end of its name.
enum class Role : uint8_t { down, up, alpha, diff, diff_b };
struct Suffix {
  std::string_view text;
  Role role;
};
constexpr std::array<Suffix, 10> kSuffixes{{
    {".lora_A.default.weight", Role::down},
    {".lora_B.default.weight", Role::up},
    {".lora_down.weight", Role::down},
    {".lora_up.weight", Role::up},
    {".lora_A.weight", Role::down},
    {".lora_B.weight", Role::up},
    {".lora_B.bias", Role::diff_b},  // diffusers' conversion of .diff_b
    {".diff_b", Role::diff_b},
    {".alpha", Role::alpha},
    {".diff", Role::diff},
}};

bool ends_with(std::string_view s, std::string_view end) {
  return s.size() >= end.size() && s.substr(s.size() - end.size()) == end;
}

// Names the original Wan code uses and diffusers does not (the layout of a prefix-less file).
bool looks_original(std::string_view module) {
  for (std::string_view word : {"self_attn", "cross_attn", "ffn.", "head.", "time_projection", "text_embedding",
                                "time_embedding", "modulation", "img_emb", "norm3"})
    if (module.find(word) != std::string_view::npos) return true;
  return false;
}

std::string where(const std::filesystem::path& path) { return "LoRA " + path.filename().string(); }

float read_alpha(const WeightStore& store, const std::string& name, const std::filesystem::path& path) {
  const TensorInfo& ti = store.info(name);
  require(ti.shape.numel() == 1, StatusCode::bad_format,
          where(path) + ": '" + name + "' should hold one number, has shape " + ti.shape.str());
  const float alpha = store.load(name, DType::f32).to_floats()[0];
  require(std::isfinite(alpha) && alpha > 0.0f, StatusCode::bad_format,
          where(path) + ": '" + name + "' = " + std::to_string(alpha) + " is not a finite positive alpha");
  return alpha;
}

// The rank of a low-rank pair: down [r, in, (1...)] and up [out, r, (1...)] (conv-shaped factors
// with trailing 1s are matrices too).
int64_t rank_of(const WeightStore& store, const LoraModule& m, const std::filesystem::path& path) {
  const Shape& down = store.info(m.down).shape;
  const Shape& up = store.info(m.up).shape;
  auto matrix_like = [](const Shape& s, int keep) {
    if (s.rank() < 2) return false;
    for (int i = keep; i < int(s.rank()); ++i)
      if (s[size_t(i)] != 1) return false;
    return true;
  };
  require(down.rank() >= 2 && down[0] > 0, StatusCode::bad_format,
          where(path) + ": '" + m.down + "' has shape " + down.str() + ", not [rank, in]");
  require(matrix_like(up, 2) && up[1] > 0, StatusCode::bad_format,
          where(path) + ": '" + m.up + "' has shape " + up.str() + ", not [out, rank]");
  require(down[0] == up[1], StatusCode::bad_format,
          where(path) + ": '" + m.down + "' " + down.str() + " and '" + m.up + "' " + up.str() +
              " disagree on the rank (" + std::to_string(down[0]) + " vs " + std::to_string(up[1]) + ")");
  return down[0];
}

}  // namespace

std::string_view lora_layout_name(LoraLayout layout) {
  switch (layout) {
    case LoraLayout::diffusers: return "diffusers";
    case LoraLayout::original: return "original";
    case LoraLayout::kohya: return "kohya";
  }
  return "?";
}

LoraInfo read_lora(const std::filesystem::path& path) { return read_lora(WeightStore::open(path), path); }

LoraInfo read_lora(const WeightStore& store, const std::filesystem::path& path) {
  LoraInfo info;
  info.path = path;
  std::map<std::string, LoraModule> modules;
  std::map<std::string, std::string> alphas;  // module -> tensor
  std::map<LoraLayout, int64_t> votes;
  for (const std::string& name : store.names()) {
    std::string_view rest = name;
    std::optional<LoraLayout> layout;
    for (const Prefix& p : kPrefixes)
      if (rest.substr(0, p.text.size()) == p.text) {
        rest.remove_prefix(p.text.size());
        layout = p.layout;
        break;
      }
    const Suffix* suffix = nullptr;
    for (const Suffix& s : kSuffixes)
      if (ends_with(rest, s.text)) {
        suffix = &s;
        break;
      }
    if (!suffix || rest.size() == suffix->text.size()) {
      info.unrecognised.push_back(name);
      continue;
    }
    const std::string module(rest.substr(0, rest.size() - suffix->text.size()));
    if (!layout) layout = looks_original(module) ? LoraLayout::original : LoraLayout::diffusers;
    LoraModule& m = modules[module];
    m.name = module;
    std::string* slot = nullptr;
    switch (suffix->role) {
      case Role::down: slot = &m.down; break;
      case Role::up: slot = &m.up; break;
      case Role::diff: slot = &m.diff; break;
      case Role::diff_b: slot = &m.diff_b; break;
      case Role::alpha: alphas[module] = name; continue;
    }
    require(slot->empty(), StatusCode::bad_format,
            where(path) + ": '" + *slot + "' and '" + name + "' both give the same tensor of module '" + module + "'");
    *slot = name;
    ++votes[*layout];
  }
  require(!modules.empty() || !alphas.empty(), StatusCode::bad_format,
          where(path) + ": no LoRA tensor in it (names ending in .lora_A/.lora_B/.lora_down/.lora_up/.diff/.diff_b)");
  for (auto& [name, alpha_tensor] : alphas) {
    auto it = modules.find(name);
    require(it != modules.end() && !it->second.down.empty(), StatusCode::bad_format,
            where(path) + ": '" + alpha_tensor + "' belongs to no low-rank pair");
    it->second.alpha = read_alpha(store, alpha_tensor, path);
  }
  for (auto& [name, m] : modules) {
    require(m.down.empty() == m.up.empty(), StatusCode::bad_format,
            where(path) + ": module '" + name + "' has '" + (m.down.empty() ? m.up : m.down) + "' without its " +
                (m.down.empty() ? "down (lora_A / lora_down)" : "up (lora_B / lora_up)") + " factor");
    if (!m.down.empty()) {
      m.rank = rank_of(store, m, path);
      info.max_rank = std::max(info.max_rank, m.rank);
      ++info.low_rank_modules;
    }
    info.delta_tensors += int64_t(!m.diff.empty()) + int64_t(!m.diff_b.empty());
    info.modules.push_back(m);
  }
  info.layout = std::max_element(votes.begin(), votes.end(), [](auto& a, auto& b) { return a.second < b.second; })->first;
  return info;
}

}  // namespace reel
