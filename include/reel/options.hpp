// Options for things created by name (samplers, schedules): "name:key=value,key=value" specs.
//
// Values stay text until a factory reads them with a typed getter, which names the key in its
// error. A factory calls reject_unused() last, so a misspelled option is an error, not ignored.
//
//   auto [name, opts] = reel::parse_spec("unipc:order=3,variant=bh1");   // name == "unipc"
//   int order = opts.get_int("order", 2);                                  // 3
//   std::string variant = opts.get_string("variant", "bh2");               // "bh1"
//   opts.reject_unused("sampler 'unipc'");                                 // ok: both keys were read
#pragma once
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "reel/export.hpp"

namespace reel {

class REEL_API Options {
 public:
  Options() = default;
  // "key=value,key=value" (spaces around keys and values are trimmed; "" is no options).
  // Throws invalid_argument on an entry without '=' or a repeated key.
  static Options parse(std::string_view text);

  Options& set(std::string_view key, std::string_view value);  // adds or replaces
  bool has(std::string_view key) const;
  bool empty() const { return entries_.empty(); }

  // Typed reads; `fallback` when the key is absent. A value that does not parse throws
  // invalid_argument naming the key and the value.
  std::string get_string(std::string_view key, std::string_view fallback) const;
  double get_double(std::string_view key, double fallback) const;
  int get_int(std::string_view key, int fallback) const;
  bool get_bool(std::string_view key, bool fallback) const;  // true/false/1/0/yes/no/on/off

  // Throws invalid_argument if a key was never read by a getter: "unknown option 'ordr' for
  // <owner> (it reads: order, variant)", listing the keys the getters asked for.
  void reject_unused(std::string_view owner) const;

  std::string str() const;  // "key=value,key=value"

 private:
  struct Entry {
    std::string key, value;
    mutable bool used = false;
  };
  std::vector<Entry> entries_;
  mutable std::vector<std::string> read_keys_;  // every key a getter asked for (for the error message)
  const Entry* find(std::string_view key) const;
};

// Splits "name:key=value,..." into the name and its options ("name" alone: no options).
REEL_API std::pair<std::string, Options> parse_spec(std::string_view spec);

}  // namespace reel
