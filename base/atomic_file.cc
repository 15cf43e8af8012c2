// AtomicFileWriter: a temporary beside the final name, so that the rename stays on one
// file system and is atomic; the directory sync makes the rename itself durable.
#include "base/atomic_file.h"

#include <utility>

namespace mtps {

std::string ParentDir(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

StatusOr<AtomicFileWriter> AtomicFileWriter::Open(FileSystem& fs, std::string path,
                                                  FileAccess access) {
  if (path.empty() || path.back() == '/') {
    return InvalidArgument("an atomic file write needs a file name, got '" + path + "'");
  }
  const std::string temp = path + ".tmp";
  MTPS_ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> file,
                        access == FileAccess::kOwnerOnly ? fs.NewPrivateWritableFile(temp)
                                                         : fs.NewWritableFile(temp));
  return AtomicFileWriter(&fs, std::move(path), std::move(file));
}

AtomicFileWriter::AtomicFileWriter(FileSystem* fs, std::string path,
                                   std::unique_ptr<WritableFile> file)
    : fs_(fs), path_(std::move(path)), temp_path_(path_ + ".tmp"), file_(std::move(file)) {}

AtomicFileWriter::AtomicFileWriter(AtomicFileWriter&& other) noexcept
    : fs_(other.fs_),
      path_(std::move(other.path_)),
      temp_path_(std::move(other.temp_path_)),
      file_(std::move(other.file_)) {}

AtomicFileWriter& AtomicFileWriter::operator=(AtomicFileWriter&& other) noexcept {
  if (this != &other) {
    Abandon();
    fs_ = other.fs_;
    path_ = std::move(other.path_);
    temp_path_ = std::move(other.temp_path_);
    file_ = std::move(other.file_);
  }
  return *this;
}

AtomicFileWriter::~AtomicFileWriter() { Abandon(); }

void AtomicFileWriter::Abandon() {
  if (file_ == nullptr) return;
  (void)file_->Close();  // best effort: the temporary goes either way
  file_.reset();
  (void)fs_->Remove(temp_path_);
}

Status AtomicFileWriter::Append(const void* data, size_t size) {
  if (file_ == nullptr) return FailedPrecondition("'" + path_ + "': append after commit");
  return file_->Append(data, size);
}

Status AtomicFileWriter::Commit() {
  if (file_ == nullptr) return FailedPrecondition("'" + path_ + "': committed twice");
  Status status = file_->Sync();
  if (status.ok()) status = file_->Close();
  if (status.ok()) status = fs_->Rename(temp_path_, path_);
  if (!status.ok()) {
    file_.reset();  // closed, or failed to: Abandon must not close it again
    (void)fs_->Remove(temp_path_);
    return status;
  }
  file_.reset();
  return fs_->SyncDir(ParentDir(path_));
}

Status WriteFileAtomically(FileSystem& fs, const std::string& path, std::string_view bytes,
                           FileAccess access) {
  MTPS_ASSIGN_OR_RETURN(AtomicFileWriter out, AtomicFileWriter::Open(fs, path, access));
  MTPS_RETURN_IF_ERROR(out.Append(bytes.data(), bytes.size()));
  return out.Commit();
}

}  // namespace mtps
