// reel-cli's argument reader: "--name value" / "--name=value" options and positionals, with
// errors that name the option.
#pragma once
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace reel_cli {

// A usage error: printed with the command's help, exit status 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// `text` as an int (no sign tricks, spaces or overflow), else a UsageError naming `name`.
int parse_int(const std::string& name, const std::string& text);
// A finite number, or UsageError naming `name`.
float parse_float(const std::string& name, const std::string& text);

class Args {
 public:
  // `flags` are options without a value (e.g. "--help"); `repeatable` options may be given
  // several times (get_all), every other option once.
  Args(const std::vector<std::string>& argv, const std::set<std::string>& flags,
       const std::set<std::string>& repeatable = {});

  std::optional<std::string> get(const std::string& name) const;  // each option may appear once
  std::string get_or(const std::string& name, const std::string& fallback) const;
  int get_int(const std::string& name, int fallback) const;
  float get_float(const std::string& name, float fallback) const;
  unsigned long long get_u64(const std::string& name, unsigned long long fallback) const;
  bool has(const std::string& name) const;
  std::vector<std::string> get_all(const std::string& name) const;  // a repeatable option's values, in order
  const std::vector<std::string>& positionals() const { return positionals_; }
  // Throws UsageError for any option not in `known`.
  void reject_unknown(const std::set<std::string>& known) const;

 private:
  std::map<std::string, std::string> values_;
  std::map<std::string, std::vector<std::string>> repeated_;
  std::vector<std::string> positionals_;
};

}  // namespace reel_cli
