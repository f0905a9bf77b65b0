// Opening only regular files, never blocking on FIFOs, and bounded reads of small files.
#include "regular_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace reel::detail {

FileHandle::~FileHandle() {
  if (fd_ >= 0) ::close(fd_);
}

FileHandle open_regular_file(const std::filesystem::path& path, const std::string& what, StatusCode missing) {
  const std::string name = path.string();
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
  const int fd = ::open(name.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR) throw Error(missing, name + ": no such file (the " + what + " does not exist)");
    throw Error(StatusCode::io_error, name + ": cannot open the " + what + ": " + std::strerror(err));
  }
  FileHandle file(fd, 0);
  struct stat st {};
  if (::fstat(fd, &st) != 0)
    throw Error(StatusCode::io_error, name + ": cannot stat the " + what + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode))
    throw Error(StatusCode::bad_format, name + ": the " + what + " is not a regular file (" +
                                            (S_ISDIR(st.st_mode)                           ? "a folder"
                                             : S_ISFIFO(st.st_mode)                        ? "a FIFO"
                                             : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device"
                                                                                           : "a socket") +
                                            ")");
  if (st.st_size < 0) throw Error(StatusCode::bad_format, name + ": impossible file size");
  const int flags = ::fcntl(fd, F_GETFL);  // back to blocking reads for a regular file
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  return FileHandle(file.release(), uint64_t(st.st_size));
}

std::string read_small_file(const std::filesystem::path& path, const std::string& what, std::uintmax_t limit,
                            StatusCode missing) {
  const FileHandle f = open_regular_file(path, what, missing);
  if (f.size() > limit)
    throw Error(StatusCode::bad_format, path.string() + ": the " + what + " is " + std::to_string(f.size()) +
                                            " bytes, more than the " + std::to_string(limit) + " allowed");
  std::string data(size_t(f.size()), '\0');
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::read(f.fd(), data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error(StatusCode::io_error, path.string() + ": cannot read the " + what + ": " + std::strerror(errno));
    if (n == 0) break;  // shrank since the stat: what is there
    done += size_t(n);
  }
  data.resize(done);
  return data;
}

void require_regular_file(const std::filesystem::path& path, const std::string& what, StatusCode missing) {
  (void)open_regular_file(path, what, missing);
}

}  // namespace reel::detail
