// Tests of base/atomic_file.h and base/env.h: a file written atomically appears whole or
// not at all; a write, fsync, close or rename that fails leaves the old file as it was,
// removes the temporary and says what failed on which path.
#include "base/atomic_file.h"

#include <sys/stat.h>

#include <filesystem>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "base/env.h"
#include "tests/common/faulty_file_system.h"
#include "tests/common/test_files.h"

namespace mtps {
namespace {

using ::mtps::testing::FaultyFileSystem;
using ::mtps::testing::ReadFile;
using ::mtps::testing::ScratchDir;
using ::mtps::testing::WriteFile;
using ::testing::HasSubstr;
using Op = FaultyFileSystem::Op;

class AtomicFileTest : public ::testing::Test {
 protected:
  ScratchDir dir_;
  const std::string path_ = dir_.File("state.txt");
};

TEST_F(AtomicFileTest, ReplacesTheFileWholeAndLeavesNoTemporary) {
  WriteFile(path_, "old contents\n");
  const std::string big(3 << 20, 'x');  // several writes' worth
  ASSERT_TRUE(WriteFileAtomically(*DefaultFileSystem(), path_, big).ok());
  EXPECT_EQ(ReadFile(path_), big);
  EXPECT_FALSE(std::filesystem::exists(path_ + ".tmp"));
}

TEST_F(AtomicFileTest, ABareFileNameSyncsTheWorkingDirectory) {
  EXPECT_EQ(ParentDir("x.json"), ".");
  EXPECT_EQ(ParentDir("/x.json"), "/");
  EXPECT_EQ(ParentDir("a/b/x.json"), "a/b");
}

TEST_F(AtomicFileTest, EveryFailureBeforeTheRenameKeepsTheOldFile) {
  for (Op op : {Op::kCreate, Op::kAppend, Op::kSync, Op::kClose, Op::kRename}) {
    SCOPED_TRACE(static_cast<int>(op));
    WriteFile(path_, "old contents\n");
    FaultyFileSystem disk;
    disk.FailAt(op, 1);
    Status s = WriteFileAtomically(disk, path_, "new contents that must not appear\n");
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.code(), StatusCode::kUnavailable);  // the disk's kind: a retry may help
    EXPECT_THAT(s.message(), HasSubstr("injected"));
    EXPECT_THAT(s.message(), HasSubstr(path_));
    EXPECT_EQ(ReadFile(path_), "old contents\n");
    EXPECT_FALSE(std::filesystem::exists(path_ + ".tmp"));
    EXPECT_EQ(disk.injected(), 1);
  }
}

TEST_F(AtomicFileTest, AFailingWriteMidStreamKeepsTheOldFile) {
  WriteFile(path_, "old contents\n");
  FaultyFileSystem disk;
  disk.FailAt(Op::kAppend, 3);  // the disk fills up at the third chunk
  StatusOr<AtomicFileWriter> out = AtomicFileWriter::Open(disk, path_);
  ASSERT_TRUE(out.ok()) << out.status();
  const std::string chunk(1000, 'y');
  ASSERT_TRUE(out->Append(chunk.data(), chunk.size()).ok());
  ASSERT_TRUE(out->Append(chunk.data(), chunk.size()).ok());
  EXPECT_THAT(out->Append(chunk.data(), chunk.size()).message(), HasSubstr("injected write"));
  { AtomicFileWriter dropped = std::move(out).value(); }  // the caller gives up
  EXPECT_EQ(ReadFile(path_), "old contents\n");
  EXPECT_FALSE(std::filesystem::exists(path_ + ".tmp"));
}

TEST_F(AtomicFileTest, AnUncommittedWriterNeverShowsItsBytes) {
  {
    StatusOr<AtomicFileWriter> out = AtomicFileWriter::Open(*DefaultFileSystem(), path_);
    ASSERT_TRUE(out.ok()) << out.status();
    ASSERT_TRUE(out->Append("half", 4).ok());
    EXPECT_FALSE(std::filesystem::exists(path_));  // nothing under the final name yet
  }
  EXPECT_FALSE(std::filesystem::exists(path_));
  EXPECT_FALSE(std::filesystem::exists(path_ + ".tmp"));
}

TEST_F(AtomicFileTest, AFailedDirectorySyncIsReportedWithTheNewFileInPlace) {
  WriteFile(path_, "old contents\n");
  FaultyFileSystem disk;
  disk.FailAt(Op::kSyncDir, 1);
  Status s = WriteFileAtomically(disk, path_, "new\n");
  EXPECT_THAT(s.message(), HasSubstr("injected directory fsync failure on '" + dir_.path()));
  EXPECT_EQ(ReadFile(path_), "new\n");
}

TEST_F(AtomicFileTest, CommitTwiceAndAppendAfterCommitAreRefused) {
  StatusOr<AtomicFileWriter> out = AtomicFileWriter::Open(*DefaultFileSystem(), path_);
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_TRUE(out->Commit().ok());
  EXPECT_EQ(out->Commit().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(out->Append("x", 1).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(ReadFile(path_), "");
}

TEST_F(AtomicFileTest, ADirectoryIsNotAFileName) {
  EXPECT_EQ(WriteFileAtomically(*DefaultFileSystem(), dir_.path() + "/", "x").code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(WriteFileAtomically(*DefaultFileSystem(), "", "x").code(),
            StatusCode::kInvalidArgument);
}

TEST_F(AtomicFileTest, OwnerOnlyFilesAreNeverReadableByOthers) {
  WriteFile(path_, "was public\n");
  ::chmod(path_.c_str(), 0644);
  WriteFile(path_ + ".tmp", "a stale temporary, world-readable\n");
  ::chmod((path_ + ".tmp").c_str(), 0644);
  ASSERT_TRUE(WriteFileAtomically(*DefaultFileSystem(), path_, "secret\n", FileAccess::kOwnerOnly).ok());
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(ReadFile(path_), "secret\n");
}

// A file system that does not say how it makes owner-only files refuses to write secrets.
class PlainFileSystem : public FileSystem {
 public:
  StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& p) override {
    return real_->NewWritableFile(p);
  }
  StatusOr<std::unique_ptr<ReadableFile>> NewReadableFile(const std::string& p) override {
    return real_->NewReadableFile(p);
  }
  Status Rename(const std::string& a, const std::string& b) override { return real_->Rename(a, b); }
  Status SyncDir(const std::string& d) override { return real_->SyncDir(d); }
  Status Remove(const std::string& p) override { return real_->Remove(p); }
  Status CreateDirs(const std::string& d) override { return real_->CreateDirs(d); }

 private:
  std::unique_ptr<FileSystem> real_ = NewPosixFileSystem();
};

TEST_F(AtomicFileTest, AFileSystemWithoutOwnerOnlyFilesRefusesSecrets) {
  PlainFileSystem plain;
  Status s = WriteFileAtomically(plain, path_, "secret\n", FileAccess::kOwnerOnly);
  EXPECT_EQ(s.code(), StatusCode::kUnimplemented);
  EXPECT_FALSE(std::filesystem::exists(path_));
}

TEST(EnvTest, DefaultsAreTheRealMachineAndEachPartCanBeReplaced) {
  Env env;
  ASSERT_NE(env.fs, nullptr);
  ASSERT_NE(env.clock, nullptr);
  EXPECT_EQ(env.fs, DefaultFileSystem());
  ManualClock clock;
  Env fake{.clock = &clock};
  EXPECT_EQ(fake.fs, DefaultFileSystem());
  const Clock::TimePoint before = fake.clock->Now();
  clock.Advance(std::chrono::seconds(7));
  EXPECT_EQ(fake.clock->Now() - before, std::chrono::seconds(7));
}

}  // namespace
}  // namespace mtps
