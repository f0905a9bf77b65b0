// Internal: a caching allocator over any raw memory source (the CUDA backend puts cudaMalloc
// under it; tests put malloc). Freed blocks go to per-size-class free lists and are handed out
// again for the same class, so steady-state model code never calls the device allocator.
//
// Size classes: requests are rounded up to a multiple of a granule that grows with the size
// (1/8 of the request's power of two, at least 512 bytes, at most 2 MiB), so a block is at
// most 12.5% larger than asked for and repeated shapes land in the same class.
//
// Ordering: the allocator itself never waits for a device. It is correct for memory whose
// users are ordered on one stream (a block freed on the host while the device still reads it
// is only handed to work queued after that read); the CUDA memory (cuda/cuda_memory.cu)
// orders every other stream it is used with against that one.
//
//   CachingAllocator a(std::make_unique<MyRawMemory>());
//   void* p = a.allocate(1000);     // 1024-byte block from the source
//   a.free(p);                      // cached
//   void* q = a.allocate(900);      // same class: the cached block, no source call
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace reel {

// Where blocks come from. allocate returns nullptr when the source is out of memory (the
// allocator then empties its cache and retries once) and throws reel::Error for other
// failures. release_all_prepare runs before cached blocks are handed back (the CUDA source
// waits for the device there, so no queued work still touches them).
class RawMemory {
 public:
  virtual ~RawMemory() = default;
  virtual void* allocate(size_t bytes) = 0;
  virtual void release(void* p, size_t bytes) noexcept = 0;
  virtual void release_all_prepare() {}
};

struct CachingAllocatorStats {
  uint64_t in_use_bytes = 0;         // bytes of live blocks (class sizes)
  uint64_t peak_in_use_bytes = 0;    // maximum of in_use_bytes since creation or reset_peak()
  uint64_t cached_bytes = 0;         // bytes in the free lists
  uint64_t reserved_bytes = 0;       // in_use + cached: what the source has handed out
  uint64_t peak_reserved_bytes = 0;  // maximum of reserved_bytes since creation or reset_peak()
  uint64_t source_allocations = 0;   // blocks obtained from the source
  uint64_t cache_hits = 0;           // allocations served from the free lists
  uint64_t live_blocks = 0;
};

class CachingAllocator {
 public:
  // caching = false frees every block back to the source at once (for memory checkers).
  explicit CachingAllocator(std::unique_ptr<RawMemory> source, bool caching = true);
  ~CachingAllocator();  // hands every cached block back; live blocks are the owners' to free
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  // A block of at least `bytes` (at least one byte). Throws Error(out_of_memory) naming the
  // request and the allocator's state when the source refuses even after the cache was emptied.
  void* allocate(size_t bytes);
  // Returns a block from allocate() to the cache. Unknown pointers are ignored (never crash).
  void free(void* p) noexcept;
  // Hands every cached block back to the source.
  void release_cached();

  CachingAllocatorStats stats() const;
  void reset_peak();
  bool caching() const { return caching_; }

  // The class a request of `bytes` is rounded up to.
  static size_t size_class(size_t bytes);

 private:
  void release_cached_locked();
  void note_reserved_locked();

  std::unique_ptr<RawMemory> source_;
  bool caching_;
  mutable std::mutex mutex_;
  std::map<size_t, std::vector<void*>> free_;  // class size -> cached blocks
  std::unordered_map<void*, size_t> live_;     // block -> class size
  CachingAllocatorStats stats_;
};

}  // namespace reel
