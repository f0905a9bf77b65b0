// The caching allocator: size classes, free lists, statistics (see caching_allocator.hpp).
#include "memory/caching_allocator.hpp"

#include <algorithm>
#include <bit>
#include <cstdio>
#include <string>

#include "reel/status.hpp"

namespace reel {

namespace {
constexpr size_t kMinBlock = 512;
constexpr size_t kMaxGranule = size_t(2) << 20;
constexpr size_t kMaxRequest = size_t(1) << 56;  // far beyond any device; keeps the rounding exact

std::string mib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", double(bytes) / (1024.0 * 1024.0));
  return buf;
}
}  // namespace

size_t CachingAllocator::size_class(size_t bytes) {
  if (bytes <= kMinBlock) return kMinBlock;
  const size_t granule = std::clamp(std::bit_floor(bytes) / 8, kMinBlock, kMaxGranule);
  return (bytes + granule - 1) / granule * granule;
}

CachingAllocator::CachingAllocator(std::unique_ptr<RawMemory> source, bool caching)
    : source_(std::move(source)), caching_(caching) {}

CachingAllocator::~CachingAllocator() {
  std::lock_guard lock(mutex_);
  for (auto& [size, blocks] : free_)
    for (void* p : blocks) source_->release(p, size);
  free_.clear();
}

void CachingAllocator::note_reserved_locked() {
  stats_.reserved_bytes = stats_.in_use_bytes + stats_.cached_bytes;
  stats_.peak_in_use_bytes = std::max(stats_.peak_in_use_bytes, stats_.in_use_bytes);
  stats_.peak_reserved_bytes = std::max(stats_.peak_reserved_bytes, stats_.reserved_bytes);
}

void* CachingAllocator::allocate(size_t bytes) {
  if (bytes > kMaxRequest)
    throw Error(StatusCode::out_of_memory, "device allocation of " + std::to_string(bytes) + " bytes is impossible");
  const size_t size = size_class(bytes);
  std::lock_guard lock(mutex_);
  if (auto it = free_.find(size); it != free_.end() && !it->second.empty()) {
    void* p = it->second.back();
    live_.emplace(p, size);  // first: if it throws, the block stays cached
    it->second.pop_back();
    if (it->second.empty()) free_.erase(it);
    stats_.cached_bytes -= size;
    stats_.in_use_bytes += size;
    ++stats_.cache_hits;
    ++stats_.live_blocks;
    note_reserved_locked();
    return p;
  }
  void* p = source_->allocate(size);
  if (!p && stats_.cached_bytes > 0) {  // the cache holds memory of other classes: give it back, retry
    release_cached_locked();
    p = source_->allocate(size);
  }
  if (!p)
    throw Error(StatusCode::out_of_memory, "out of device memory: cannot allocate " + mib(size) + " (" +
                                               mib(stats_.in_use_bytes) + " in use by " +
                                               std::to_string(stats_.live_blocks) + " live blocks)");
  try {
    live_.emplace(p, size);
  } catch (...) {
    source_->release(p, size);
    throw Error(StatusCode::out_of_memory, "out of host memory for the device allocator's block table");
  }
  ++stats_.source_allocations;
  ++stats_.live_blocks;
  stats_.in_use_bytes += size;
  note_reserved_locked();
  return p;
}

void CachingAllocator::free(void* p) noexcept {
  if (!p) return;
  std::lock_guard lock(mutex_);
  auto it = live_.find(p);
  if (it == live_.end()) return;  // not ours: ignore rather than corrupt the lists
  const size_t size = it->second;
  live_.erase(it);
  stats_.in_use_bytes -= size;
  --stats_.live_blocks;
  if (!caching_) {
    source_->release(p, size);
    note_reserved_locked();
    return;
  }
  try {
    free_[size].push_back(p);
    stats_.cached_bytes += size;
  } catch (...) {  // no host memory for the list entry: hand the block back instead
    source_->release(p, size);
  }
  note_reserved_locked();
}

void CachingAllocator::release_cached_locked() {
  if (free_.empty()) return;
  source_->release_all_prepare();
  for (auto& [size, blocks] : free_)
    for (void* p : blocks) source_->release(p, size);
  free_.clear();
  stats_.cached_bytes = 0;
  note_reserved_locked();
}

void CachingAllocator::release_cached() {
  std::lock_guard lock(mutex_);
  release_cached_locked();
}

CachingAllocatorStats CachingAllocator::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void CachingAllocator::reset_peak() {
  std::lock_guard lock(mutex_);
  stats_.peak_in_use_bytes = stats_.in_use_bytes;
  stats_.peak_reserved_bytes = stats_.reserved_bytes;
}

}  // namespace reel
