// Tests of the scheduler's journal file: every field survives a write and a read, strings
// with spaces and '%' included; a damaged, truncated or foreign file is refused with the
// reason; a missing one is NOT_FOUND; Membership::Restore puts ranks and generations back.
#include "scheduler/scheduler_journal.h"

#include <cmath>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/scheduler/scheduler_test_util.h"

namespace mtps::scheduler {
namespace {

using ::mtps::scheduler::testing::TempDir;
using ::testing::HasSubstr;

SchedulerJournal FullJournal() {
  SchedulerJournal j;
  j.spec_hash = 0x5eed5eed12345678ull;
  j.num_servers = 2;
  j.num_workers = 2;
  j.incarnation = 3;
  j.phase = "finishing";
  j.membership.epoch = 9;
  j.membership.last_generation = 7;
  j.membership.nodes = {
      NodeRecord{.role = proto::Role::SERVER, .rank = 0, .address = "tcp://127.0.0.1:7001",
                 .http_address = "127.0.0.1:8001", .hostname = "host a", .pid = 11,
                 .generation = 1, .identity = "server-0"},
      NodeRecord{.role = proto::Role::WORKER, .rank = 1, .address = "tcp://127.0.0.1:7004",
                 .http_address = "", .hostname = "100%", .pid = 14, .generation = 7, .identity = ""},
  };
  j.lost = {NodeKey{proto::Role::SERVER, 1}};
  j.rejoined = {NodeKey{proto::Role::WORKER, 1}};
  j.last_checkpoint_step = 120;
  j.next_checkpoint_step = 140;
  j.committed_positions = {{0, 1, 5000, 118}, {1, 1, 5120, 120}};
  j.released_barriers = {"parameters-initialized", "epoch-0-trained", "a barrier with spaces"};
  j.best_model = BestModel{.epoch = 1, .checkpoint_id = 7};
  j.progress.resize(2);
  j.progress[0].reported = true;
  j.progress[0].done = true;
  j.progress[0].epoch = 1;
  j.progress[0].step = 300;
  j.progress[0].samples = 76800;
  j.progress[0].bad_records = 2;
  j.progress[0].samples_per_sec = 12345.678;
  j.progress[0].train_seconds = 6.25;
  j.progress[0].train_loss = {{"ctr", 0.45}, {"cvr", 0.125}};
  j.progress[0].eval = {{"ctr", TaskMetrics{.loss = 0.4, .auc = 0.7312, .logloss = 0.41, .mse = 0.1}},
                        {"cvr", TaskMetrics{.loss = 0.2, .auc = std::nan(""), .logloss = 0.2, .mse = 0}}};
  j.progress[0].epochs[0] = {.trained = true, .samples = 38400, .seconds = 3.125,
                             .train_loss = {{"ctr", 0.5}, {"cvr", 0.25}},
                             .eval = {{"ctr", TaskMetrics{.loss = 0.4, .auc = 0.7, .logloss = 0.42, .mse = 0}}}};
  j.progress[0].epochs[1] = {.eval = {{"ctr", TaskMetrics{.auc = 0.7312}}}};  // evaluated, not closed
  return j;
}

TEST(SchedulerJournalTest, EveryFieldSurvivesAWriteAndARead) {
  TempDir dir;
  auto fs = NewPosixFileSystem();
  const SchedulerJournal j = FullJournal();
  ASSERT_TRUE(WriteSchedulerJournal(*fs, JournalPath(dir.path() + "/ckpt"), j).ok());
  StatusOr<SchedulerJournal> back = ReadSchedulerJournal(*fs, JournalPath(dir.path() + "/ckpt"));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->spec_hash, j.spec_hash);
  EXPECT_EQ(back->num_servers, 2);
  EXPECT_EQ(back->num_workers, 2);
  EXPECT_EQ(back->incarnation, 3u);
  EXPECT_EQ(back->phase, "finishing");
  EXPECT_EQ(back->membership.epoch, 9u);
  EXPECT_EQ(back->membership.last_generation, 7u);
  ASSERT_EQ(back->membership.nodes.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    const NodeRecord& a = back->membership.nodes[i];
    const NodeRecord& b = j.membership.nodes[i];
    EXPECT_EQ(a.role, b.role);
    EXPECT_EQ(a.rank, b.rank);
    EXPECT_EQ(a.address, b.address);
    EXPECT_EQ(a.http_address, b.http_address);
    EXPECT_EQ(a.hostname, b.hostname);
    EXPECT_EQ(a.pid, b.pid);
    EXPECT_EQ(a.generation, b.generation);
    EXPECT_EQ(a.identity, b.identity);
    EXPECT_EQ(a.spec_hash, j.spec_hash);
  }
  EXPECT_EQ(back->lost, j.lost);
  EXPECT_EQ(back->rejoined, j.rejoined);
  EXPECT_EQ(back->last_checkpoint_step, std::optional<uint64_t>(120));
  EXPECT_EQ(back->next_checkpoint_step, 140u);
  ASSERT_EQ(back->committed_positions.size(), 2u);
  EXPECT_EQ(back->committed_positions[1].records, 5120u);
  EXPECT_EQ(back->committed_positions[1].step, 120u);
  EXPECT_EQ(back->released_barriers, j.released_barriers);
  ASSERT_TRUE(back->best_model.has_value());
  EXPECT_EQ(back->best_model->epoch, 1u);
  EXPECT_EQ(back->best_model->checkpoint_id, 7u);
  ASSERT_EQ(back->progress.size(), 2u);
  const ProgressTracker::WorkerState& w = back->progress[0];
  EXPECT_TRUE(w.done);
  EXPECT_EQ(w.samples, 76800u);
  EXPECT_EQ(w.bad_records, 2u);
  EXPECT_DOUBLE_EQ(w.samples_per_sec, 12345.678);
  EXPECT_DOUBLE_EQ(w.train_loss.at("cvr"), 0.125);
  EXPECT_DOUBLE_EQ(w.eval.at("ctr").auc, 0.7312);
  EXPECT_TRUE(std::isnan(w.eval.at("cvr").auc));
  ASSERT_EQ(w.epochs.size(), 2u);
  EXPECT_TRUE(w.epochs.at(0).trained);
  EXPECT_EQ(w.epochs.at(0).samples, 38400u);
  EXPECT_DOUBLE_EQ(w.epochs.at(0).seconds, 3.125);
  EXPECT_DOUBLE_EQ(w.epochs.at(0).train_loss.at("cvr"), 0.25);
  EXPECT_DOUBLE_EQ(w.epochs.at(0).eval.at("ctr").logloss, 0.42);
  EXPECT_FALSE(w.epochs.at(1).trained);
  EXPECT_DOUBLE_EQ(w.epochs.at(1).eval.at("ctr").auc, 0.7312);
  EXPECT_FALSE(back->progress[1].reported);
}

TEST(SchedulerJournalTest, ADamagedJournalIsRefusedWithItsReason) {
  const std::string good = EncodeSchedulerJournal(FullJournal());
  ASSERT_TRUE(DecodeSchedulerJournal(good, "j").ok());

  std::string flipped = good;
  flipped[flipped.size() / 2] ^= 0x20;
  StatusOr<SchedulerJournal> a = DecodeSchedulerJournal(flipped, "/ckpt/scheduler.journal");
  ASSERT_EQ(a.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(a.status().message(), HasSubstr("/ckpt/scheduler.journal"));
  EXPECT_THAT(a.status().message(), HasSubstr("checksum"));

  StatusOr<SchedulerJournal> b = DecodeSchedulerJournal(good.substr(0, good.size() - 7), "j");
  ASSERT_EQ(b.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(b.status().message(), HasSubstr("truncated"));

  StatusOr<SchedulerJournal> c = DecodeSchedulerJournal("mtps-checkpoint-manifest 1\nid 3\n", "j");
  ASSERT_EQ(c.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(c.status().message(), HasSubstr("not a scheduler journal"));

  StatusOr<SchedulerJournal> d = DecodeSchedulerJournal("", "j");
  EXPECT_EQ(d.status().code(), StatusCode::kDataLoss);
}

TEST(SchedulerJournalTest, AMissingJournalIsNotFound) {
  TempDir dir;
  auto fs = NewPosixFileSystem();
  StatusOr<SchedulerJournal> read = ReadSchedulerJournal(*fs, JournalPath(dir.path()));
  EXPECT_EQ(read.status().code(), StatusCode::kNotFound);
}

TEST(SchedulerJournalTest, MembershipRestoreGivesBackRanksGenerationsAndTheView) {
  Membership members(2, 1, 42);
  NodeRecord node{.role = proto::Role::SERVER, .address = "tcp://a:1", .spec_hash = 42};
  ASSERT_TRUE(members.Register(node).ok());
  node.address = "tcp://b:2";
  ASSERT_TRUE(members.Register(node).ok());
  ASSERT_TRUE(members.Register({.role = proto::Role::WORKER, .address = "tcp://c:3", .spec_hash = 42}).ok());
  members.MarkLost(proto::Role::SERVER, 1);
  ASSERT_TRUE(members.Register({.role = proto::Role::SERVER, .address = "tcp://d:4", .spec_hash = 42,
                                .requested_rank = 1}).ok());
  const Membership::Saved saved = members.Save();

  Membership restored(2, 1, 42);
  ASSERT_TRUE(restored.Restore(saved).ok());
  EXPECT_TRUE(restored.complete());
  EXPECT_EQ(restored.epoch(), members.epoch());
  ASSERT_NE(restored.Find(proto::Role::SERVER, 1), nullptr);
  EXPECT_EQ(restored.Find(proto::Role::SERVER, 1)->address, "tcp://d:4");
  EXPECT_EQ(restored.Find(proto::Role::SERVER, 1)->generation, 4u);
  // The next registration continues the generations, never reusing one.
  restored.MarkLost(proto::Role::WORKER, 0);
  ASSERT_TRUE(restored.Register({.role = proto::Role::WORKER, .address = "tcp://e:5", .spec_hash = 42}).ok());
  EXPECT_EQ(restored.Find(proto::Role::WORKER, 0)->generation, 5u);

  Membership smaller(1, 1, 42);
  Status s = smaller.Restore(saved);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("server 1"));
}

}  // namespace
}  // namespace mtps::scheduler
