// reel-cli's argument reader.
#include "cli_args.hpp"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>

namespace reel_cli {

Args::Args(const std::vector<std::string>& argv, const std::set<std::string>& flags,
           const std::set<std::string>& repeatable) {
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (a.size() < 2 || a[0] != '-' || a == "-") {
      positionals_.push_back(a);
      continue;
    }
    std::string name = a, value;
    const size_t eq = a.find('=');
    if (eq != std::string::npos) {
      name = a.substr(0, eq);
      value = a.substr(eq + 1);
    } else if (flags.count(a)) {
      value = "1";
    } else {
      if (i + 1 >= argv.size()) throw UsageError("option " + a + " needs a value");
      value = argv[++i];
    }
    if (repeatable.count(name)) {
      repeated_[name].push_back(value);
      continue;
    }
    if (!values_.emplace(name, value).second)
      throw UsageError("option " + name + " is given more than once");
  }
}

std::optional<std::string> Args::get(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

std::string Args::get_or(const std::string& name, const std::string& fallback) const {
  return get(name).value_or(fallback);
}

bool Args::has(const std::string& name) const { return values_.count(name) > 0 || repeated_.count(name) > 0; }

std::vector<std::string> Args::get_all(const std::string& name) const {
  auto it = repeated_.find(name);
  return it == repeated_.end() ? std::vector<std::string>{} : it->second;
}

int parse_int(const std::string& name, const std::string& text) {
  char* end = nullptr;
  errno = 0;
  const long long x = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || std::isspace(static_cast<unsigned char>(text[0])) || *end != '\0' || errno != 0 ||
      x < -2147483647LL || x > 2147483647LL)
    throw UsageError(name + " must be an integer between -2147483647 and 2147483647, got \"" + text + "\"");
  return int(x);
}

int Args::get_int(const std::string& name, int fallback) const {
  const auto v = get(name);
  return v ? parse_int(name, *v) : fallback;
}

unsigned long long Args::get_u64(const std::string& name, unsigned long long fallback) const {
  const auto v = get(name);
  if (!v) return fallback;
  char* end = nullptr;
  errno = 0;
  const unsigned long long x = std::strtoull(v->c_str(), &end, 10);
  if (v->empty() || (*v)[0] == '-' || *end != '\0' || errno != 0)
    throw UsageError(name + " must be a non-negative integer, got \"" + *v + "\"");
  return x;
}

float parse_float(const std::string& name, const std::string& text) {
  char* end = nullptr;
  const float x = std::strtof(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !std::isfinite(x)) throw UsageError(name + " must be a number, got \"" + text + "\"");
  return x;
}

float Args::get_float(const std::string& name, float fallback) const {
  const auto v = get(name);
  return v ? parse_float(name, *v) : fallback;
}

void Args::reject_unknown(const std::set<std::string>& known) const {
  for (const auto& [name, value] : values_)
    if (!known.count(name)) throw UsageError("unknown option " + name);
  for (const auto& [name, value] : repeated_)
    if (!known.count(name)) throw UsageError("unknown option " + name);
}

}  // namespace reel_cli
