// Internal: a thread-safe name → (entry, factory) table, shared by the sampler and
// schedule registries. Built-ins are added by the owner's constructor, not by static
// initialisers (a static library would drop those).
#pragma once
#include <algorithm>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "reel/schedule.hpp"
#include "reel/status.hpp"

namespace reel::detail {

template <class Factory>
class NamedRegistry {
 public:
  explicit NamedRegistry(std::string kind) : kind_(std::move(kind)) {}

  void add(RegistryEntry entry, Factory factory) {
    const std::string& name = entry.name;
    require(!name.empty() && name.find_first_of(":, =") == std::string::npos, StatusCode::invalid_argument,
            kind_ + " name '" + name + "' must be non-empty and contain no ':', ',', '=' or space");
    require(bool(factory), StatusCode::invalid_argument, kind_ + " '" + name + "' has no factory");
    std::lock_guard lock(mutex_);
    for (const auto& e : entries_)
      require(e.entry.name != name, StatusCode::invalid_argument, kind_ + " '" + name + "' is already registered");
    entries_.push_back({std::move(entry), std::move(factory)});
  }

  // A copy of the factory, so it runs outside the lock (a factory may use the registry).
  Factory find(std::string_view name) const {
    std::lock_guard lock(mutex_);
    for (const auto& e : entries_)
      if (e.entry.name == name) return e.factory;
    std::string known;
    for (const auto& e : entries_) known += (known.empty() ? "" : ", ") + e.entry.name;
    throw Error(StatusCode::not_found, "no " + kind_ + " named '" + std::string(name) + "' (registered: " + known + ")");
  }

  std::vector<RegistryEntry> list() const {
    std::lock_guard lock(mutex_);
    std::vector<RegistryEntry> out;
    for (const auto& e : entries_) out.push_back(e.entry);
    return out;
  }

  std::optional<RegistryEntry> entry(std::string_view name) const {
    std::lock_guard lock(mutex_);
    for (const auto& e : entries_)
      if (e.entry.name == name) return e.entry;
    return std::nullopt;
  }

 private:
  struct Entry {
    RegistryEntry entry;
    Factory factory;
  };
  std::string kind_;
  mutable std::mutex mutex_;
  std::vector<Entry> entries_;
};

}  // namespace reel::detail
