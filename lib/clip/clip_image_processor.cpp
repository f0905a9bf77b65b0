// ClipImageProcessor: transformers' CLIPImageProcessor (PIL backend, image_processing_backends
// PilBackend._preprocess) step by step — resize (image_transforms.get_resize_output_image_size,
// PIL on uint8), center_crop (zero padding when the crop is larger), rescale (float64 multiply,
// then float32), normalize (float32) — and its preprocessor_config.json.
#include <cmath>
#include <fstream>
#include <sstream>

#include "reel/image_encoder.hpp"
#include "weights/strict_json.hpp"

namespace reel {

namespace {

constexpr int kMaxSide = 32768;

std::string read_text(const std::filesystem::path& path) {
  return detail::read_small_file(path, "image processor config", 1u << 20);
}

// PIL's resampling filters by their Image.Resampling number (the "resample" value).
std::string_view pil_filter_name(int64_t v) {
  switch (v) {
    case 0: return "NEAREST";
    case 1: return "LANCZOS";
    case 2: return "BILINEAR";
    case 3: return "BICUBIC";
    case 4: return "BOX";
    case 5: return "HAMMING";
  }
  return "unknown";
}

}  // namespace

void ClipImageProcessorConfig::validate() const {
  auto side = [](int v) { return v >= 1 && v <= kMaxSide; };
  require(!do_resize || (shortest_edge > 0 ? side(shortest_edge) : side(resize_width) && side(resize_height)),
          StatusCode::invalid_argument,
          "CLIP image processor: the resize size must be a shortest_edge or a width and height in 1.." +
              std::to_string(kMaxSide));
  require(!do_center_crop || (side(crop_width) && side(crop_height)), StatusCode::invalid_argument,
          "CLIP image processor: crop_size " + std::to_string(crop_width) + "x" + std::to_string(crop_height) +
              " is outside 1.." + std::to_string(kMaxSide));
  require(!do_rescale || (std::isfinite(rescale_factor) && rescale_factor > 0.0), StatusCode::invalid_argument,
          "CLIP image processor: rescale_factor must be a positive number");
  for (int c = 0; c < 3; ++c)
    require(!do_normalize || (std::isfinite(image_mean[c]) && std::isfinite(image_std[c]) && image_std[c] > 0.0f),
            StatusCode::invalid_argument, "CLIP image processor: image_mean must be finite and image_std positive");
}

ClipImageProcessor::ClipImageProcessor(const ClipImageProcessorConfig& config) : config_(config) { config_.validate(); }

ClipImageProcessor ClipImageProcessor::open(const std::filesystem::path& given) {
  std::error_code ec;
  const std::filesystem::path path =
      std::filesystem::is_directory(given, ec) ? given / "preprocessor_config.json" : given;
  if (!std::filesystem::exists(path, ec))
    throw Error(StatusCode::not_found, path.string() + " does not exist (a CLIP image processor's "
                                                       "preprocessor_config.json)");
  const nlohmann::json j = detail::parse_json_strict(read_text(path), path.string());
  const std::string where = path.string() + ": ";
  if (!j.is_object()) throw Error(StatusCode::bad_format, where + "not a JSON object");
  ClipImageProcessorConfig c;
  auto boolean = [&](const char* key, bool& out) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return;
    if (!it->is_boolean()) throw Error(StatusCode::bad_format, where + "\"" + key + "\" must be true or false");
    out = it->get<bool>();
  };
  auto integer = [&](const nlohmann::json& v, const std::string& key) {
    if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > kMaxSide)
      throw Error(StatusCode::bad_format, where + "\"" + key + "\" must be an integer in 1.." + std::to_string(kMaxSide));
    return int(v.get<int64_t>());
  };
  boolean("do_resize", c.do_resize);
  boolean("do_center_crop", c.do_center_crop);
  boolean("do_rescale", c.do_rescale);
  boolean("do_normalize", c.do_normalize);
  bool do_pad = false;
  boolean("do_pad", do_pad);
  if (do_pad) throw Error(StatusCode::unsupported, where + "\"do_pad\": padding to a batch size is not implemented");

  if (auto it = j.find("size"); it != j.end() && !it->is_null()) {
    if (it->is_number()) {
      c.shortest_edge = integer(*it, "size");  // legacy int: CLIP's default_to_square is false
    } else if (it->is_object()) {
      if (it->contains("longest_edge") || it->contains("max_height") || it->contains("max_width"))
        throw Error(StatusCode::unsupported, where + "\"size\" " + it->dump() +
                                                 ": reel's CLIP processor resizes to a shortest_edge or to a height and width");
      if (it->contains("shortest_edge")) {
        c.shortest_edge = integer((*it)["shortest_edge"], "size.shortest_edge");
      } else if (it->contains("height") && it->contains("width")) {
        c.shortest_edge = 0;
        c.resize_height = integer((*it)["height"], "size.height");
        c.resize_width = integer((*it)["width"], "size.width");
      } else {
        throw Error(StatusCode::bad_format, where + "\"size\" must hold shortest_edge, or height and width");
      }
    } else {
      throw Error(StatusCode::bad_format, where + "\"size\" must be an integer or an object");
    }
  }
  if (auto it = j.find("crop_size"); it != j.end() && !it->is_null()) {
    if (it->is_number()) {
      c.crop_height = c.crop_width = integer(*it, "crop_size");
    } else if (it->is_object() && it->contains("height") && it->contains("width")) {
      c.crop_height = integer((*it)["height"], "crop_size.height");
      c.crop_width = integer((*it)["width"], "crop_size.width");
    } else {
      throw Error(StatusCode::bad_format, where + "\"crop_size\" must be an integer or {\"height\", \"width\"}");
    }
  }
  if (auto it = j.find("resample"); it != j.end() && !it->is_null()) {
    if (!it->is_number_integer()) throw Error(StatusCode::bad_format, where + "\"resample\" must be a PIL filter number");
    const int64_t r = it->get<int64_t>();
    if (r == 3) c.resample = ClipResample::bicubic;
    else if (r == 1) c.resample = ClipResample::lanczos;
    else
      throw Error(StatusCode::unsupported, where + "\"resample\" " + std::to_string(r) + " (PIL " +
                                               std::string(pil_filter_name(r)) +
                                               "): reel implements 3 (BICUBIC, CLIP's) and 1 (LANCZOS)");
  }
  if (auto it = j.find("rescale_factor"); it != j.end() && !it->is_null()) {
    if (!it->is_number() || !(it->get<double>() > 0.0) || !std::isfinite(it->get<double>()))
      throw Error(StatusCode::bad_format, where + "\"rescale_factor\" must be a positive number");
    c.rescale_factor = it->get<double>();
  }
  auto triple = [&](const char* key, std::array<float, 3>& out) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return;
    if (it->is_number()) {
      out.fill(float(it->get<double>()));
    } else if (it->is_array() && it->size() == 3 && (*it)[0].is_number() && (*it)[1].is_number() &&
               (*it)[2].is_number()) {
      for (int k = 0; k < 3; ++k) out[size_t(k)] = float((*it)[size_t(k)].get<double>());  // np.array(..., float32)
    } else {
      throw Error(StatusCode::bad_format, where + "\"" + key + "\" must be a number or a list of 3 numbers");
    }
  };
  triple("image_mean", c.image_mean);
  triple("image_std", c.image_std);
  try {
    c.validate();
  } catch (const Error& e) {
    throw Error(StatusCode::bad_format, where + e.what());
  }
  return ClipImageProcessor(c);
}

std::array<int, 2> ClipImageProcessor::resized_size(int width, int height) const {
  const ClipImageProcessorConfig& c = config_;
  if (!c.do_resize) return {width, height};
  if (c.shortest_edge <= 0) return {c.resize_width, c.resize_height};
  // get_resize_output_image_size(default_to_square=False): the short side becomes the size,
  // the long one int(size · long / short) (true division of Python ints, truncated).
  const int64_t shorter = std::min(width, height), longer = std::max(width, height);
  const double scaled = double(int64_t(c.shortest_edge) * longer) / double(shorter);
  require(scaled <= kMaxSide, StatusCode::invalid_argument,
          "CLIP image processor: a " + std::to_string(width) + "x" + std::to_string(height) +
              " image would be resized to over " + std::to_string(kMaxSide) + " pixels on its long side");
  const int other = int(scaled);
  return width <= height ? std::array<int, 2>{c.shortest_edge, other} : std::array<int, 2>{other, c.shortest_edge};
}

Image ClipImageProcessor::resize(const Image& image) const {
  require(image.width >= 1 && image.height >= 1 &&
              image.rgb.size() == size_t(image.width) * size_t(image.height) * 3,
          StatusCode::invalid_argument,
          "CLIP image processor: the image is " + std::to_string(image.width) + "x" + std::to_string(image.height) +
              " with " + std::to_string(image.rgb.size()) + " bytes of RGB (want width x height x 3, both >= 1)");
  const auto [w, h] = resized_size(image.width, image.height);
  if (w == image.width && h == image.height) return image;  // PIL returns a copy
  return config_.resample == ClipResample::bicubic ? resize_bicubic(image, w, h) : resize_lanczos(image, w, h);
}

Tensor ClipImageProcessor::preprocess(const Image& image) const {
  const ClipImageProcessorConfig& c = config_;
  const Image sized = resize(image);
  const int w = c.do_center_crop ? c.crop_width : sized.width;
  const int h = c.do_center_crop ? c.crop_height : sized.height;
  // center_crop: offset (size − crop) // 2 when the image is larger; when smaller, the image
  // sits at ceil((crop − size) / 2) in a zero canvas.
  auto offset = [](int size, int crop) { return size >= crop ? (size - crop) / 2 : -((crop - size + 1) / 2); };
  const int dx = offset(sized.width, w), dy = offset(sized.height, h);
  Tensor out = Tensor::empty({3, h, w}, DType::f32);
  float* o = out.data<float>();
  const int64_t plane = int64_t(h) * w;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const int sy = y + dy, sx = x + dx;
      const bool inside = sy >= 0 && sy < sized.height && sx >= 0 && sx < sized.width;
      for (int ch = 0; ch < 3; ++ch) {
        const uint8_t u = inside ? sized.rgb[(size_t(sy) * sized.width + sx) * 3 + ch] : 0;
        // rescale: image.astype(float64) * scale, then float32; normalize: (x − mean) / std in float32.
        float v = c.do_rescale ? float(double(u) * c.rescale_factor) : float(u);
        if (c.do_normalize) v = (v - c.image_mean[size_t(ch)]) / c.image_std[size_t(ch)];
        o[ch * plane + int64_t(y) * w + x] = v;
      }
    }
  return out;
}

}  // namespace reel
