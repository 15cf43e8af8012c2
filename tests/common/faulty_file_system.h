// FaultyFileSystem: the real disk, except that a chosen operation fails — the n-th create,
// write, fsync, close, rename or directory fsync, optionally only on paths holding a given
// part, once or from then on (a disk that stays broken). For tests of atomic writes and
// checkpoints that must leave the previous file whole.
//
//   mtps::testing::FaultyFileSystem disk;
//   disk.FailAt(FaultyFileSystem::Op::kSync, /*nth=*/2, /*path_part=*/"table-");
//   ServerOptions options;
//   options.env = Env{.fs = &disk};
//
// Thread-safety: any thread (the counters are under a mutex).
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "base/file_system.h"
#include "base/status.h"

namespace mtps::testing {

class FaultyFileSystem : public FileSystem {
 public:
  enum class Op { kCreate, kAppend, kSync, kClose, kRename, kSyncDir };

  // Fails the `nth` (from 1) call of `op` whose path contains `path_part` (empty: any
  // path); `sticky`: that call and every later one of the kind.
  void FailAt(Op op, int nth, std::string path_part = "", bool sticky = false) {
    std::lock_guard<std::mutex> lock(mu_);
    op_ = op;
    nth_ = nth;
    path_part_ = std::move(path_part);
    sticky_ = sticky;
    calls_ = 0;
    armed_ = true;
  }
  void Heal() {
    std::lock_guard<std::mutex> lock(mu_);
    armed_ = false;
  }
  int injected() const {
    std::lock_guard<std::mutex> lock(mu_);
    return injected_;
  }

  StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override {
    MTPS_RETURN_IF_ERROR(Check(Op::kCreate, path));
    return Wrap(path, real_->NewWritableFile(path));
  }
  StatusOr<std::unique_ptr<WritableFile>> NewPrivateWritableFile(const std::string& path) override {
    MTPS_RETURN_IF_ERROR(Check(Op::kCreate, path));
    return Wrap(path, real_->NewPrivateWritableFile(path));
  }
  StatusOr<std::unique_ptr<ReadableFile>> NewReadableFile(const std::string& path) override {
    return real_->NewReadableFile(path);
  }
  Status Rename(const std::string& from, const std::string& to) override {
    MTPS_RETURN_IF_ERROR(Check(Op::kRename, to));
    return real_->Rename(from, to);
  }
  Status SyncDir(const std::string& dir) override {
    MTPS_RETURN_IF_ERROR(Check(Op::kSyncDir, dir));
    return real_->SyncDir(dir);
  }
  Status Remove(const std::string& path) override { return real_->Remove(path); }
  Status CreateDirs(const std::string& dir) override { return real_->CreateDirs(dir); }

 private:
  class File : public WritableFile {
   public:
    File(FaultyFileSystem* fs, std::string path, std::unique_ptr<WritableFile> real)
        : fs_(fs), path_(std::move(path)), real_(std::move(real)) {}
    Status Append(const void* data, size_t size) override {
      MTPS_RETURN_IF_ERROR(fs_->Check(Op::kAppend, path_));
      return real_->Append(data, size);
    }
    Status Sync() override {
      MTPS_RETURN_IF_ERROR(fs_->Check(Op::kSync, path_));
      return real_->Sync();
    }
    Status Close() override {
      Status injected = fs_->Check(Op::kClose, path_);
      Status closed = real_->Close();  // the descriptor goes either way, as close(2) does
      return injected.ok() ? closed : injected;
    }

   private:
    FaultyFileSystem* fs_;
    std::string path_;
    std::unique_ptr<WritableFile> real_;
  };

  static const char* Name(Op op) {
    switch (op) {
      case Op::kCreate: return "create";
      case Op::kAppend: return "write (disk full)";
      case Op::kSync: return "fsync";
      case Op::kClose: return "close";
      case Op::kRename: return "rename";
      case Op::kSyncDir: return "directory fsync";
    }
    return "?";
  }

  StatusOr<std::unique_ptr<WritableFile>> Wrap(const std::string& path,
                                               StatusOr<std::unique_ptr<WritableFile>> file) {
    if (!file.ok()) return file.status();
    return std::unique_ptr<WritableFile>(new File(this, path, std::move(file).value()));
  }

  Status Check(Op op, const std::string& path) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!armed_ || op != op_ || path.find(path_part_) == std::string::npos) return Status::OK();
    ++calls_;
    if (calls_ < nth_ || (calls_ > nth_ && !sticky_)) return Status::OK();
    ++injected_;
    return Unavailable(std::string("injected ") + Name(op) + " failure on '" + path + "'");
  }

  std::unique_ptr<FileSystem> real_ = NewPosixFileSystem();
  mutable std::mutex mu_;
  bool armed_ = false;    // GUARDED_BY(mu_)
  Op op_ = Op::kCreate;   // GUARDED_BY(mu_)
  int nth_ = 0;           // GUARDED_BY(mu_)
  std::string path_part_; // GUARDED_BY(mu_)
  bool sticky_ = false;   // GUARDED_BY(mu_)
  int calls_ = 0;         // GUARDED_BY(mu_)
  int injected_ = 0;      // GUARDED_BY(mu_)
};

}  // namespace mtps::testing
