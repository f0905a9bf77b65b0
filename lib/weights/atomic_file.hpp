// Internal: a file written under a temporary name in the same folder and renamed into place on
// commit(), so a reader never sees half a file; destroyed without commit() (an error, an
// exception), the temporary is removed. Used by every weight-file writer.
//
//   detail::AtomicFile f(path);
//   f.write(header.data(), header.size());
//   f.write(data, n);
//   f.commit();   // throws io_error naming the path on any failure
#pragma once
#include <cstddef>
#include <filesystem>
#include <string>

namespace reel::detail {

class AtomicFile {
 public:
  explicit AtomicFile(const std::filesystem::path& path);  // throws io_error when it cannot create it
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile();
  // Errors are remembered and reported by commit() (so callers need not check each write).
  void write(const void* data, size_t n);
  void pad_to(uint64_t alignment, unsigned char fill = 0);  // zero bytes up to the next multiple
  uint64_t size() const { return written_; }
  void commit();

 private:
  std::filesystem::path path_;
  std::string tmp_;
  int fd_ = -1;
  int error_ = 0;
  uint64_t written_ = 0;
};

}  // namespace reel::detail
