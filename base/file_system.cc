// The POSIX FileSystem: plain file descriptors, fsync for durability, rename
// for atomic replacement and an fsync of the directory so the rename itself survives.
#include "base/file_system.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace mtps {
namespace {

Status IoError(const std::string& what, const std::string& path, int err) {
  return Unavailable(what + " '" + path + "': " + std::strerror(err));
}

class PosixWritableFile : public WritableFile {
 public:
  PosixWritableFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0) ::close(fd_);
  }

  Status Append(const void* data, size_t size) override {
    const char* p = static_cast<const char*>(data);
    while (size > 0) {
      const ssize_t n = ::write(fd_, p, size);
      if (n < 0) {
        if (errno == EINTR) continue;
        return IoError("write to", path_, errno);
      }
      p += n;
      size -= static_cast<size_t>(n);
    }
    return Status::OK();
  }
  Status Sync() override {
    if (::fsync(fd_) != 0) return IoError("fsync of", path_, errno);
    return Status::OK();
  }
  Status Close() override {
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) return IoError("close of", path_, errno);
    return Status::OK();
  }

 private:
  std::string path_;
  int fd_;
};

class PosixReadableFile : public ReadableFile {
 public:
  PosixReadableFile(std::string path, int fd, uint64_t size)
      : path_(std::move(path)), fd_(fd), size_(size) {}
  ~PosixReadableFile() override { ::close(fd_); }

  Status Read(void* data, size_t size, size_t* read) override {
    char* p = static_cast<char*>(data);
    *read = 0;
    while (size > 0) {
      const ssize_t n = ::read(fd_, p, size);
      if (n < 0) {
        if (errno == EINTR) continue;
        return IoError("read of", path_, errno);
      }
      if (n == 0) break;
      p += n;
      size -= static_cast<size_t>(n);
      *read += static_cast<size_t>(n);
    }
    return Status::OK();
  }
  uint64_t Size() const override { return size_; }

 private:
  std::string path_;
  int fd_;
  uint64_t size_;
};

class PosixFileSystem : public FileSystem {
 public:
  StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override {
    return Create(path, /*owner_only=*/false);
  }
  StatusOr<std::unique_ptr<WritableFile>> NewPrivateWritableFile(const std::string& path) override {
    return Create(path, /*owner_only=*/true);
  }
  StatusOr<std::unique_ptr<ReadableFile>> NewReadableFile(const std::string& path) override {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) return NotFound("no file '" + path + "'");
      return IoError("cannot open", path, errno);
    }
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      const int err = errno;
      ::close(fd);
      return IoError("cannot stat", path, err);
    }
    return std::unique_ptr<ReadableFile>(
        new PosixReadableFile(path, fd, static_cast<uint64_t>(st.st_size)));
  }
  Status Rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) {
      return IoError("cannot rename '" + from + "' to", to, errno);
    }
    return Status::OK();
  }
  Status SyncDir(const std::string& dir) override {
    const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return IoError("cannot open directory", dir, errno);
    const int rc = ::fsync(fd);
    const int err = errno;
    ::close(fd);
    if (rc != 0) return IoError("fsync of directory", dir, err);
    return Status::OK();
  }
  Status Remove(const std::string& path) override {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return IoError("cannot remove", path, errno);
    return Status::OK();
  }
  Status CreateDirs(const std::string& dir) override {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return Unavailable("cannot create directory '" + dir + "': " + ec.message());
    return Status::OK();
  }

 private:
  static StatusOr<std::unique_ptr<WritableFile>> Create(const std::string& path, bool owner_only) {
    const int fd =
        ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, owner_only ? 0600 : 0644);
    if (fd < 0) return IoError("cannot create", path, errno);
    // A file that existed keeps its old mode through O_TRUNC: a secret must not stay 0644.
    if (owner_only && ::fchmod(fd, 0600) != 0) {
      const int err = errno;
      ::close(fd);
      return IoError("cannot set the mode of", path, err);
    }
    return std::unique_ptr<WritableFile>(new PosixWritableFile(path, fd));
  }
};

}  // namespace

StatusOr<std::unique_ptr<WritableFile>> FileSystem::NewPrivateWritableFile(const std::string& path) {
  return Unimplemented("this file system cannot create owner-only files ('" + path + "')");
}

std::unique_ptr<FileSystem> NewPosixFileSystem() {
  return std::make_unique<PosixFileSystem>();
}

}  // namespace mtps
