// FileSystem: the file operations checkpoints, journals and data writers need, behind an
// interface so that tests can inject failed writes, syncs and renames (LevelDB's Env).
//
//   std::unique_ptr<FileSystem> fs = NewPosixFileSystem();
//   MTPS_ASSIGN_OR_RETURN(auto file, fs->NewWritableFile(tmp_path));
//   MTPS_RETURN_IF_ERROR(file->Append(data, size));
//   MTPS_RETURN_IF_ERROR(file->Sync());
//   MTPS_RETURN_IF_ERROR(file->Close());
//   MTPS_RETURN_IF_ERROR(fs->Rename(tmp_path, path));
//   MTPS_RETURN_IF_ERROR(fs->SyncDir(dir));
//
// Every error names the path and the system's reason.
// Thread-safety: a file system may be used from several threads; a file object by one
// thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "base/status.h"

namespace mtps {

class WritableFile {
 public:
  virtual ~WritableFile() = default;
  virtual Status Append(const void* data, size_t size) = 0;
  virtual Status Sync() = 0;   // data on disk (fsync)
  virtual Status Close() = 0;
};

class ReadableFile {
 public:
  virtual ~ReadableFile() = default;
  // Reads up to `size` bytes; `*read` < size only at the end of the file.
  virtual Status Read(void* data, size_t size, size_t* read) = 0;
  virtual uint64_t Size() const = 0;
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;
  virtual StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) = 0;
  // Like NewWritableFile, but readable by its owner only (mode 0600) from its creation on:
  // for secret keys. The default refuses (UNIMPLEMENTED), so that a wrapper which does not
  // say how it creates such files never writes a secret that others can read.
  virtual StatusOr<std::unique_ptr<WritableFile>> NewPrivateWritableFile(const std::string& path);
  virtual StatusOr<std::unique_ptr<ReadableFile>> NewReadableFile(const std::string& path) = 0;
  virtual Status Rename(const std::string& from, const std::string& to) = 0;
  virtual Status SyncDir(const std::string& dir) = 0;
  virtual Status Remove(const std::string& path) = 0;
  virtual Status CreateDirs(const std::string& dir) = 0;  // like mkdir -p
};

std::unique_ptr<FileSystem> NewPosixFileSystem();

}  // namespace mtps
