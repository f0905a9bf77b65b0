// Internal: a whole file memory-mapped read-only (RAII). Shared by WeightStore and the tensor
// views it hands out, so a view keeps its mapping alive. Replacing the file (write + rename, as
// save_safetensors does) is safe; truncating it in place while mapped is not (the OS raises
// SIGBUS on access past the new end), which no reader of mapped files can prevent: the model
// loaders therefore keep private copies unless asked to map (map_weights). Only regular files
// are opened (a FIFO is refused without blocking).
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>

namespace reel::detail {

class MappedFile {
 public:
  // Throws not_found (no such file), io_error (cannot open, stat or map it), bad_format (not a
  // regular file). A 0-byte file maps to an empty span (mmap cannot map 0 bytes).
  static std::shared_ptr<const MappedFile> open(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::span<const std::byte> bytes() const { return {data_, size_}; }
  uint64_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }
  // Tells the OS that this process is done with [offset, offset + n) for now: the whole pages
  // inside it leave the process's resident set (they stay in the page cache and are read back
  // from the file if touched again). Loaders call it after copying a tensor out, so a model
  // is not resident twice (mapped and copied) while it loads. Views (map_weights) never do.
  void release(uint64_t offset, uint64_t n) const;

 private:
  MappedFile() = default;
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
  std::filesystem::path path_;
};

}  // namespace reel::detail
