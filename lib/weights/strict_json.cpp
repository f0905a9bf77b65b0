// parse_json_strict: a DOM-building SAX handler that rejects duplicate keys and caps depth and size.
#include "weights/strict_json.hpp"

#include <fstream>
#include <vector>

#include "reel/status.hpp"
#include "weights/safetensors_header.hpp"  // find_invalid_utf8, quote_name

namespace reel::detail {
namespace {

using json = nlohmann::json;

class StrictDomBuilder {
 public:
  StrictDomBuilder(size_t max_depth, size_t max_values) : max_depth_(max_depth), max_values_(max_values) {}
  json root;
  std::string error;

  bool null() { return put(json(nullptr)); }
  bool boolean(bool v) { return put(json(v)); }
  bool number_integer(json::number_integer_t v) { return put(json(v)); }
  bool number_unsigned(json::number_unsigned_t v) { return put(json(v)); }
  bool number_float(json::number_float_t v, const json::string_t&) { return put(json(v)); }
  bool string(json::string_t& v) { return put(json(std::move(v))); }
  bool binary(json::binary_t&) { return fail("binary values are not JSON"); }
  bool start_object(std::size_t) { return open(json::object()); }
  bool start_array(std::size_t) { return open(json::array()); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }
  bool key(json::string_t& k) {
    if (stack_.back()->contains(k)) return fail("duplicate key " + quote_name(k));
    key_ = std::move(k);
    return true;
  }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& ex) {
    std::string what = ex.what();
    const size_t colon = what.find(": ");
    return fail("not valid JSON (at byte " + std::to_string(position) +
                "): " + (colon == std::string::npos ? what : what.substr(colon + 2)).substr(0, 300));
  }

 private:
  size_t max_depth_, max_values_, values_ = 0;
  std::vector<json*> stack_;  // open containers; the parent of an open container never grows meanwhile
  std::string key_;

  bool fail(std::string m) {
    if (error.empty()) error = std::move(m);
    return false;
  }
  json* insert(json&& v) {
    if (stack_.empty()) {
      root = std::move(v);
      return &root;
    }
    json* top = stack_.back();
    if (top->is_array()) {
      top->push_back(std::move(v));
      return &top->back();
    }
    json& slot = (*top)[key_];
    slot = std::move(v);
    return &slot;
  }
  bool put(json&& v) {
    if (++values_ > max_values_) return fail("more than " + std::to_string(max_values_) + " values");
    insert(std::move(v));
    return true;
  }
  bool open(json&& v) {
    if (stack_.size() >= max_depth_) return fail("nested deeper than " + std::to_string(max_depth_) + " levels");
    if (++values_ > max_values_) return fail("more than " + std::to_string(max_values_) + " values");
    stack_.push_back(insert(std::move(v)));
    return true;
  }
  bool close() {
    stack_.pop_back();
    return true;
  }
};

}  // namespace

json parse_json_strict(std::string_view text, const std::string& label, size_t max_depth, size_t max_values) {
  if (auto at = find_invalid_utf8(text))
    throw Error(StatusCode::bad_format, label + ": not valid UTF-8 (at byte " + std::to_string(*at) + ")");
  StrictDomBuilder builder(max_depth, max_values);
  bool ok = false;
  try {
    ok = json::sax_parse(text.data(), text.data() + text.size(), &builder, json::input_format_t::json, true, false);
  } catch (const json::exception& ex) {
    throw Error(StatusCode::bad_format, label + ": not valid JSON: " + ex.what());
  }
  if (!ok || !builder.error.empty())
    throw Error(StatusCode::bad_format, label + ": " + (builder.error.empty() ? "not valid JSON" : builder.error));
  return std::move(builder.root);
}

json read_json_file(const std::filesystem::path& path, const std::string& what, std::uintmax_t limit) {
  json j = parse_json_strict(read_small_file(path, what, limit), path.string());
  if (!j.is_object()) throw Error(StatusCode::bad_format, path.string() + ": the " + what + " is not a JSON object");
  return j;
}

}  // namespace reel::detail
