// AtomicFile: write under a unique temporary name, fsync-free close, rename into place.
#include "weights/atomic_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "reel/status.hpp"

namespace reel::detail {

AtomicFile::AtomicFile(const std::filesystem::path& path) : path_(path) {
  static std::atomic<uint64_t> counter{0};
  tmp_ = path.string() + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error(StatusCode::io_error, path.string() + ": cannot create " + tmp_ + ": " + std::strerror(errno));
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(tmp_.c_str());
  }
}

void AtomicFile::write(const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  written_ += n;
  while (n > 0 && error_ == 0) {
    const ssize_t w = ::write(fd_, p, std::min<size_t>(n, size_t(1) << 30));
    if (w < 0) {
      if (errno != EINTR) error_ = errno;
      continue;
    }
    p += w;
    n -= size_t(w);
  }
}

void AtomicFile::pad_to(uint64_t alignment, unsigned char fill) {
  const uint64_t pad = (alignment - written_ % alignment) % alignment;
  const std::vector<unsigned char> bytes(pad, fill);
  if (pad) write(bytes.data(), pad);
}

void AtomicFile::commit() {
  int err = error_;
  if (::close(fd_) != 0 && err == 0) err = errno;
  fd_ = -1;
  if (err == 0 && std::rename(tmp_.c_str(), path_.c_str()) == 0) return;
  if (err == 0) err = errno;
  ::unlink(tmp_.c_str());
  throw Error(StatusCode::io_error, path_.string() + ": cannot write: " + std::strerror(err));
}

}  // namespace reel::detail
