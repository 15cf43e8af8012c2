// Tests of FailureDetector and BarrierTable with a hand-driven clock: no sleeps.
#include "scheduler/failure_detector.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "scheduler/barrier_table.h"

namespace mtps::scheduler {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;

const NodeKey kServer0{proto::Role::SERVER, 0};
const NodeKey kWorker0{proto::Role::WORKER, 0};
const NodeKey kWorker1{proto::Role::WORKER, 1};

TEST(FailureDetectorTest, ANodeSilentPastTheTimeoutIsReportedOnce) {
  ManualClock clock;
  FailureDetector detector(&clock, seconds(5));
  detector.Watch(kServer0);
  detector.Watch(kWorker0);
  clock.Advance(seconds(3));
  EXPECT_TRUE(detector.Beat(kServer0));
  EXPECT_TRUE(detector.FindSilent().empty());
  clock.Advance(seconds(3));  // worker 0 silent 6 s, server 0 3 s
  auto silent = detector.FindSilent();
  ASSERT_EQ(silent.size(), 1u);
  EXPECT_EQ(silent[0].first, kWorker0);
  EXPECT_EQ(silent[0].second, seconds(6));
  EXPECT_TRUE(detector.FindSilent().empty());   // once
  EXPECT_FALSE(detector.Beat(kWorker0));         // no longer watched
  EXPECT_TRUE(detector.Beat(kServer0));
  clock.Advance(seconds(5));
  EXPECT_TRUE(detector.FindSilent().empty()) << "exactly at the timeout is not past it";
  clock.Advance(milliseconds(1));
  EXPECT_EQ(detector.FindSilent().size(), 1u);
}

TEST(FailureDetectorTest, UnwatchedNodesAreUnknown) {
  ManualClock clock;
  FailureDetector detector(&clock, seconds(1));
  EXPECT_FALSE(detector.Beat(kWorker1));
  detector.Watch(kWorker1);
  detector.Forget(kWorker1);
  clock.Advance(seconds(10));
  EXPECT_TRUE(detector.FindSilent().empty());
}

struct Answers {
  std::vector<Status> got;
  BarrierTable::Release Slot() {
    return [this](const Status& s) { got.push_back(s); };
  }
};

TEST(BarrierTableTest, ReleasesEveryoneWhenTheLastArrives) {
  ManualClock clock;
  BarrierTable barriers(&clock, seconds(10), /*default_count=*/3);
  Answers a, b, c;
  ASSERT_TRUE(barriers.Arrive("start", 0, kServer0, a.Slot()).ok());
  ASSERT_TRUE(barriers.Arrive("start", 0, kWorker0, b.Slot()).ok());
  EXPECT_TRUE(a.got.empty());
  EXPECT_TRUE(b.got.empty());
  EXPECT_EQ(barriers.waiting(), 1u);
  ASSERT_TRUE(barriers.Arrive("start", 0, kWorker1, c.Slot()).ok());
  for (Answers* x : {&a, &b, &c}) {
    ASSERT_EQ(x->got.size(), 1u);
    EXPECT_TRUE(x->got[0].ok());
  }
  EXPECT_EQ(barriers.waiting(), 0u);
  // The name can be used again.
  ASSERT_TRUE(barriers.Arrive("start", 1, kWorker0, b.Slot()).ok());
  EXPECT_EQ(b.got.size(), 2u);
}

TEST(BarrierTableTest, ARepeatedArrivalDoesNotCountTwice) {
  ManualClock clock;
  BarrierTable barriers(&clock, seconds(10), 2);
  Answers first, retry;
  ASSERT_TRUE(barriers.Arrive("x", 0, kWorker0, first.Slot()).ok());
  ASSERT_TRUE(barriers.Arrive("x", 0, kWorker0, retry.Slot()).ok());
  ASSERT_EQ(first.got.size(), 1u);
  EXPECT_EQ(first.got[0].code(), StatusCode::kCancelled);
  EXPECT_TRUE(retry.got.empty());
  EXPECT_EQ(barriers.waiting(), 1u);
}

TEST(BarrierTableTest, TimesOutNamingWhoArrived) {
  ManualClock clock;
  BarrierTable barriers(&clock, seconds(10), 3);
  Answers a;
  ASSERT_TRUE(barriers.Arrive("epoch-2", 0, kWorker1, a.Slot()).ok());
  clock.Advance(seconds(10));
  EXPECT_EQ(barriers.ExpireOverdue(), 0);
  clock.Advance(milliseconds(1));
  EXPECT_EQ(barriers.ExpireOverdue(), 1);
  ASSERT_EQ(a.got.size(), 1u);
  EXPECT_EQ(a.got[0].code(), StatusCode::kDeadlineExceeded);
  EXPECT_THAT(a.got[0].message(), HasSubstr("barrier 'epoch-2' timed out"));
  EXPECT_THAT(a.got[0].message(), HasSubstr("1 of 3 nodes arrived (worker 1)"));
  EXPECT_EQ(barriers.waiting(), 0u);
}

TEST(BarrierTableTest, BadCountsAreRefusedAndCancelAllAnswersEveryone) {
  ManualClock clock;
  BarrierTable barriers(&clock, seconds(10), 3);
  Answers a, b;
  Status too_many = barriers.Arrive("x", 4, kWorker0, a.Slot());
  EXPECT_EQ(too_many.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(too_many.message(), HasSubstr("asks for 4 nodes but the cluster has 3"));
  ASSERT_TRUE(barriers.Arrive("x", 2, kWorker0, a.Slot()).ok());
  Status mismatch = barriers.Arrive("x", 3, kWorker1, b.Slot());
  EXPECT_EQ(mismatch.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(mismatch.message(), HasSubstr("waiting for 2 nodes; worker 1 arrived expecting 3"));
  EXPECT_TRUE(b.got.empty());
  barriers.CancelAll(Unavailable("server 0 died"));
  ASSERT_EQ(a.got.size(), 1u);
  EXPECT_EQ(a.got[0].code(), StatusCode::kUnavailable);
  EXPECT_THAT(a.got[0].message(), HasSubstr("barrier 'x': server 0 died"));
}

}  // namespace
}  // namespace mtps::scheduler
