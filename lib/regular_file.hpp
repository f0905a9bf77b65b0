// Internal: opening files that reel reads, safely. Only regular files are opened (a FIFO, a
// device or a folder is refused without blocking), and small files are bounded before reading.
//
//   reel::detail::FileHandle f = reel::detail::open_regular_file(path, "transformer weights");
//   std::string text = reel::detail::read_small_file(path, "prompt schedule", 1 << 20);
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>

#include "reel/status.hpp"

namespace reel::detail {

// An open, read-only file descriptor; closed when the handle goes.
class FileHandle {
 public:
  explicit FileHandle(int fd, uint64_t size) : fd_(fd), size_(size) {}
  ~FileHandle();
  FileHandle(FileHandle&& o) noexcept : fd_(o.fd_), size_(o.size_) { o.fd_ = -1; }
  FileHandle(const FileHandle&) = delete;
  FileHandle& operator=(const FileHandle&) = delete;
  FileHandle& operator=(FileHandle&&) = delete;
  int fd() const { return fd_; }
  uint64_t size() const { return size_; }  // at open time
  int release() {  // the caller owns the descriptor now
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
  uint64_t size_;
};

// Opens `path` for reading when it is a regular file (a link to one is fine). The open never
// blocks: a FIFO or device is opened non-blocking, seen for what it is and refused. Errors
// name the path and `what`: `missing` (default not_found) when there is no such file,
// bad_format when it is not a regular file (a folder, FIFO, device), io_error when the system
// refuses.
FileHandle open_regular_file(const std::filesystem::path& path, const std::string& what,
                             StatusCode missing = StatusCode::not_found);

// The whole file, when it is a regular file of at most `limit` bytes (checked before reading).
// Errors as open_regular_file; bad_format when it is larger than `limit`.
std::string read_small_file(const std::filesystem::path& path, const std::string& what, std::uintmax_t limit,
                            StatusCode missing = StatusCode::not_found);

// For readers that open the file themselves (FFmpeg): open_regular_file's checks, then close.
void require_regular_file(const std::filesystem::path& path, const std::string& what,
                          StatusCode missing = StatusCode::not_found);

}  // namespace reel::detail
