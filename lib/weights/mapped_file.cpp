// MappedFile: open + fstat + mmap(PROT_READ, MAP_PRIVATE), unmapped when the last owner goes.
#include "weights/mapped_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

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

}  // namespace reel::detail
