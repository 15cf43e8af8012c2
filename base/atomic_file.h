// Files that are whole or absent: written under "<path>.tmp", synced, renamed over the
// final name, the directory synced. A crash leaves the old file or the new one, never half.
//
//   MTPS_RETURN_IF_ERROR(WriteFileAtomically(*env.fs, path, text));
//
//   MTPS_ASSIGN_OR_RETURN(AtomicFileWriter out, AtomicFileWriter::Open(fs, path));
//   MTPS_RETURN_IF_ERROR(out.Append(chunk.data(), chunk.size()));   // any number of times
//   MTPS_RETURN_IF_ERROR(out.Commit());   // never committed: the temporary is removed
//
// Every step goes through the FileSystem, so a test's fault-injecting one can fail any of
// them. A failure before the rename leaves the old file (or none) untouched and removes the
// temporary; the error is the file system's, naming the path and the reason. A failed
// directory sync after the rename is reported too: the new file is in place, but a crash
// could still bring the old one back.
// Thread-safety: one writer per object; the file system may be shared. Two writers of the
// same path at once share a temporary name: callers give each file one writer.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "base/file_system.h"
#include "base/status.h"

namespace mtps {

enum class FileAccess {
  kShared,     // 0644
  kOwnerOnly,  // 0600 from creation on (FileSystem::NewPrivateWritableFile): secrets
};

class AtomicFileWriter {
 public:
  static StatusOr<AtomicFileWriter> Open(FileSystem& fs, std::string path,
                                         FileAccess access = FileAccess::kShared);

  AtomicFileWriter(AtomicFileWriter&&) noexcept;
  AtomicFileWriter& operator=(AtomicFileWriter&&) noexcept;
  ~AtomicFileWriter();  // not committed: closes and removes the temporary

  Status Append(const void* data, size_t size);
  // Sync, close, rename over the final name, sync the directory. Once only.
  Status Commit();

  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return temp_path_; }

 private:
  AtomicFileWriter(FileSystem* fs, std::string path, std::unique_ptr<WritableFile> file);
  void Abandon();

  FileSystem* fs_ = nullptr;
  std::string path_;
  std::string temp_path_;
  std::unique_ptr<WritableFile> file_;  // null once committed or abandoned
};

Status WriteFileAtomically(FileSystem& fs, const std::string& path, std::string_view bytes,
                           FileAccess access = FileAccess::kShared);

// The directory whose entry names `path` ("." for a bare name), which Commit syncs.
std::string ParentDir(const std::string& path);

}  // namespace mtps
