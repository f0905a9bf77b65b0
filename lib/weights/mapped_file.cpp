// MappedFile: open + fstat + mmap(PROT_READ, MAP_PRIVATE), unmapped when the last owner goes.
#include "weights/mapped_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "regular_file.hpp"
#include "reel/status.hpp"

namespace reel::detail {

std::shared_ptr<const MappedFile> MappedFile::open(const std::filesystem::path& path) {
  const std::string name = path.string();
  const FileHandle handle = open_regular_file(path, "weights file");  // never blocks on a FIFO
  if (handle.size() > uint64_t(SIZE_MAX)) throw Error(StatusCode::bad_format, name + ": impossible file size");
  std::shared_ptr<MappedFile> file(new MappedFile());
  file->path_ = path;
  file->size_ = size_t(handle.size());
  if (file->size_ == 0) return file;
  void* p = ::mmap(nullptr, file->size_, PROT_READ, MAP_PRIVATE, handle.fd(), 0);
  if (p == MAP_FAILED) throw Error(StatusCode::io_error, name + ": cannot memory-map: " + std::strerror(errno));
  file->data_ = static_cast<const std::byte*>(p);
  return file;
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<std::byte*>(data_), size_);
}

void MappedFile::release(uint64_t offset, uint64_t n) const {
  static const uint64_t page = uint64_t(::sysconf(_SC_PAGESIZE));
  if (!data_ || offset >= size_) return;
  n = std::min<uint64_t>(n, size_ - offset);
  const uint64_t begin = (offset + page - 1) / page * page, end = (offset + n) / page * page;  // whole pages only
  if (end > begin) ::madvise(const_cast<std::byte*>(data_) + begin, size_t(end - begin), MADV_DONTNEED);
}

}  // namespace reel::detail
