// Internal: write-then-rename outputs, so a failed write never leaves a half-written file.
//
//   AtomicOutput out(path, AtomicOutput::Kind::file);   // reserves a hidden sibling name
//   write_file(out.temp_path(), bytes, path);           // write under the temporary name
//   out.commit();                                        // rename into place
//   // leaving scope without commit() removes the temporary
#pragma once
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>

namespace reel::video {

class AtomicOutput {
 public:
  enum class Kind { file, directory };

  // Checks the destination (a file path must not be a folder; a folder must be new or empty)
  // and creates the temporary file or folder next to it. io_error naming final_path on failure.
  AtomicOutput(const std::filesystem::path& final_path, Kind kind);
  ~AtomicOutput();  // removes the temporary unless committed
  AtomicOutput(const AtomicOutput&) = delete;
  AtomicOutput& operator=(const AtomicOutput&) = delete;

  const std::filesystem::path& temp_path() const { return temp_; }
  const std::filesystem::path& final_path() const { return final_; }
  // Renames the temporary onto the final path (replacing a file, or an empty folder).
  void commit();

 private:
  std::filesystem::path final_;
  std::filesystem::path temp_;
  Kind kind_;
  bool committed_ = false;
};

// Writes bytes to `path` (created or truncated); io_error naming `label` when the OS refuses.
void write_file(const std::filesystem::path& path, std::span<const uint8_t> bytes,
                const std::filesystem::path& label);

// The OS error text for errno value `err`.
std::string os_error(int err);

}  // namespace reel::video
