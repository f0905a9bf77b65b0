// reel::Options: text key=value options for samplers and schedules created by name.
#include "reel/options.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "reel/status.hpp"

namespace reel {

namespace {
std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}
}  // namespace

Options Options::parse(std::string_view text) {
  Options out;
  text = trim(text);
  while (!text.empty()) {
    const size_t comma = text.find(',');
    const std::string_view item = trim(text.substr(0, comma));
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    const size_t eq = item.find('=');
    require(eq != std::string_view::npos && eq > 0, StatusCode::invalid_argument,
            "option '" + std::string(item) + "' is not of the form key=value");
    const std::string_view key = trim(item.substr(0, eq));
    require(!key.empty(), StatusCode::invalid_argument, "option '" + std::string(item) + "' has an empty key");
    require(!out.has(key), StatusCode::invalid_argument, "option '" + std::string(key) + "' is given twice");
    out.entries_.push_back({std::string(key), std::string(trim(item.substr(eq + 1)))});
  }
  return out;
}

Options& Options::set(std::string_view key, std::string_view value) {
  for (auto& e : entries_)
    if (e.key == key) {
      e.value = std::string(value);
      return *this;
    }
  entries_.push_back({std::string(key), std::string(value)});
  return *this;
}

const Options::Entry* Options::find(std::string_view key) const {
  if (std::find(read_keys_.begin(), read_keys_.end(), key) == read_keys_.end()) read_keys_.emplace_back(key);
  for (const auto& e : entries_)
    if (e.key == key) {
      e.used = true;
      return &e;
    }
  return nullptr;
}

bool Options::has(std::string_view key) const {
  for (const auto& e : entries_)
    if (e.key == key) return true;
  return false;
}

std::string Options::get_string(std::string_view key, std::string_view fallback) const {
  const Entry* e = find(key);
  return e ? e->value : std::string(fallback);
}

double Options::get_double(std::string_view key, double fallback) const {
  const Entry* e = find(key);
  if (!e) return fallback;
  const char* begin = e->value.c_str();
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(begin, &end);
  require(!e->value.empty() && end == begin + e->value.size() && errno == 0 && std::isfinite(v),
          StatusCode::invalid_argument,
          "option '" + e->key + "' must be a finite number, got '" + e->value + "'");
  return v;
}

int Options::get_int(std::string_view key, int fallback) const {
  const Entry* e = find(key);
  if (!e) return fallback;
  const char* begin = e->value.c_str();
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(begin, &end, 10);
  require(!e->value.empty() && end == begin + e->value.size() && errno == 0 && v >= -2147483647L && v <= 2147483647L,
          StatusCode::invalid_argument, "option '" + e->key + "' must be an integer, got '" + e->value + "'");
  return int(v);
}

bool Options::get_bool(std::string_view key, bool fallback) const {
  const Entry* e = find(key);
  if (!e) return fallback;
  const std::string& v = e->value;
  if (v == "true" || v == "1" || v == "yes" || v == "on") return true;
  if (v == "false" || v == "0" || v == "no" || v == "off") return false;
  throw Error(StatusCode::invalid_argument, "option '" + e->key + "' must be true or false, got '" + v + "'");
}

void Options::reject_unused(std::string_view owner) const {
  for (const auto& e : entries_) {
    if (e.used) continue;
    std::string known;
    for (const auto& k : read_keys_) known += (known.empty() ? "" : ", ") + k;
    throw Error(StatusCode::invalid_argument, "unknown option '" + e.key + "' for " + std::string(owner) +
                                                  " (it reads: " + (known.empty() ? "no options" : known) + ")");
  }
}

std::string Options::str() const {
  std::string out;
  for (const auto& e : entries_) out += (out.empty() ? "" : ",") + e.key + "=" + e.value;
  return out;
}

std::pair<std::string, Options> parse_spec(std::string_view spec) {
  spec = trim(spec);
  const size_t colon = spec.find(':');
  const std::string name(trim(spec.substr(0, colon)));
  require(!name.empty(), StatusCode::invalid_argument, "empty name in spec '" + std::string(spec) + "'");
  if (colon == std::string_view::npos) return {name, Options{}};
  return {name, Options::parse(spec.substr(colon + 1))};
}

}  // namespace reel
