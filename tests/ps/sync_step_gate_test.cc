// Tests of SyncStepGate, the one place where sparse tables and dense blocks gather the
// pushes of a sync step: the push that completes a step gets every part in rank order,
// misuse is refused without keeping the part, and waiting steps can be taken or closed.
#include "ps/sync_step_gate.h"

#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace mtps::ps {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Gate = SyncStepGate<std::unique_ptr<int>>;

// A gate that keeps the parts of the steps a push passed, for the tests to look at.
class TestGate : public Gate {
 public:
  using Gate::Gate;
  StatusOr<std::vector<std::unique_ptr<int>>> Arrive(uint64_t step, int rank, int num_workers,
                                                     std::unique_ptr<int>& part,
                                                     uint64_t generation = 0) {
    return Gate::Arrive(step, rank, num_workers, part, generation, &passed);
  }
  std::vector<std::unique_ptr<int>> passed;
};

std::unique_ptr<int> Part(int v) { return std::make_unique<int>(v); }

std::vector<int> Values(const std::vector<std::unique_ptr<int>>& parts) {
  std::vector<int> out;
  for (const auto& p : parts) out.push_back(*p);
  return out;
}

TEST(SyncStepGate, TheLastPushGetsEveryPartInRankOrder) {
  TestGate gate("table 1");
  auto p2 = Part(12), p0 = Part(10), p1 = Part(11);
  StatusOr<std::vector<std::unique_ptr<int>>> r = gate.Arrive(7, 2, 3, p2);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
  EXPECT_EQ(p2, nullptr) << "an accepted part is taken";
  r = gate.Arrive(7, 0, 3, p0);
  ASSERT_TRUE(r.ok() && r->empty());
  r = gate.Arrive(7, 1, 3, p1);
  ASSERT_TRUE(r.ok());
  EXPECT_THAT(Values(*r), ElementsAre(10, 11, 12));
  EXPECT_TRUE(gate.TakeWaiting().empty()) << "a complete step is forgotten";
}

TEST(SyncStepGate, StepsAreGatheredApart) {
  TestGate gate("table 1");
  auto a = Part(1), b = Part(2), c = Part(3), d = Part(4);
  ASSERT_TRUE(gate.Arrive(1, 0, 2, a).ok());
  ASSERT_TRUE(gate.Arrive(2, 0, 2, b).ok()) << "rank 0 holds a part of step 1: nothing passed";
  auto done = gate.Arrive(1, 1, 2, c);
  ASSERT_TRUE(done.ok());
  EXPECT_THAT(Values(*done), ElementsAre(1, 3));
  done = gate.Arrive(2, 1, 2, d);
  ASSERT_TRUE(done.ok());
  EXPECT_THAT(Values(*done), ElementsAre(2, 4));
  EXPECT_TRUE(gate.passed.empty());
  EXPECT_TRUE(gate.TakeWaiting().empty());
}

// A server that replaced one which completed step 4 and died before worker 1 read its
// answer: worker 1 sends step 4 again, worker 0 (answered) goes on to step 5.
TEST(SyncStepGate, AStepAWorkerHasGonePastIsAnsweredNotAwaited) {
  TestGate gate("table 1");
  auto resent = Part(14), next0 = Part(5), next1 = Part(15);
  ASSERT_TRUE(gate.Arrive(4, 1, 2, resent).ok());
  auto waiting = gate.Arrive(5, 0, 2, next0);
  ASSERT_TRUE(waiting.ok());
  EXPECT_TRUE(waiting->empty());
  EXPECT_THAT(Values(gate.passed), ElementsAre(14)) << "step 4 can never complete here";
  auto late = Part(4);
  EXPECT_TRUE(Gate::AppliedAlready(gate.Arrive(4, 0, 2, late).status()))
      << "a passed step counts as done";
  auto done = gate.Arrive(5, 1, 2, next1);
  ASSERT_TRUE(done.ok());
  EXPECT_THAT(Values(*done), ElementsAre(5, 15)) << "the next step completes as usual";
  EXPECT_TRUE(gate.TakeWaiting().empty());
}

TEST(SyncStepGate, ARefusedPushPassesNothing) {
  TestGate gate("dense block 1");
  auto waiting = Part(1), other = Part(2), bad = Part(3);
  ASSERT_TRUE(gate.Arrive(4, 1, 2, waiting).ok());
  ASSERT_TRUE(gate.Arrive(5, 2, 3, other).ok());
  EXPECT_EQ(gate.Arrive(5, 0, 2, bad).status().code(), StatusCode::kInvalidArgument)
      << "step 5's first push said 3 workers";
  EXPECT_TRUE(gate.passed.empty()) << "a refused push says nothing about step 4";
  auto still = gate.TakeWaiting();
  EXPECT_THAT(Values(still.at(4)), ElementsAre(1));
  EXPECT_THAT(Values(still.at(5)), ElementsAre(2));
}

TEST(SyncStepGate, MisuseIsRefusedAndThePartStaysWithTheCaller) {
  TestGate gate("dense block 4");
  auto first = Part(1);
  ASSERT_TRUE(gate.Arrive(5, 0, 2, first).ok());
  auto again = Part(2);
  Status s = gate.Arrive(5, 0, 2, again).status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("second sync push of dense block 4 step 5 from worker 0"));
  EXPECT_NE(again, nullptr);
  s = gate.Arrive(5, 1, 3, again).status();
  EXPECT_THAT(s.message(), HasSubstr("says num_workers=3, the step's first push said 2"));
  s = gate.Arrive(5, 2, 2, again).status();
  EXPECT_THAT(s.message(), HasSubstr("worker rank 2 is outside [0, num_workers=2)"));
  s = gate.Arrive(5, -1, 2, again).status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  s = gate.Arrive(6, 0, 0, again).status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(again, nullptr);
  // The step still completes with the right pushes.
  auto done = gate.Arrive(5, 1, 2, again);
  ASSERT_TRUE(done.ok());
  EXPECT_THAT(Values(*done), ElementsAre(1, 2));
}

// A worker replaced under its rank goes on from the newest step a worker finished: its
// pushes of steps applied already are answered as done and never applied again.
TEST(SyncStepGate, AStepAppliedAlreadyIsReplayedNotAppliedTwice) {
  TestGate gate("table 0");
  auto a = Part(1), b = Part(2);
  ASSERT_TRUE(gate.Arrive(8, 0, 2, a, /*generation=*/3).ok());
  ASSERT_EQ(gate.Arrive(8, 1, 2, b, /*generation=*/4)->size(), 2u);
  for (uint64_t step : {8, 5}) {
    auto replay = Part(9);
    Status s = gate.Arrive(step, 1, 2, replay, /*generation=*/7).status();
    EXPECT_TRUE(Gate::AppliedAlready(s)) << s;
    EXPECT_THAT(s.message(), HasSubstr("applied already"));
    EXPECT_NE(replay, nullptr) << "a replay is not kept";
  }
  EXPECT_TRUE(gate.TakeWaiting().empty());
  // The next step gathers as usual.
  auto c = Part(3), d = Part(4);
  ASSERT_TRUE(gate.Arrive(9, 1, 2, c, 7).ok());
  auto done = gate.Arrive(9, 0, 2, d, 3);
  ASSERT_TRUE(done.ok());
  EXPECT_THAT(Values(*done), ElementsAre(4, 3));
}

// A worker died with its push of step 12 waiting; its replacement (a newer generation)
// pushes step 12 again: that part takes the dead one's place, and the step is applied once
// with one part per rank. The same generation twice is still misuse.
TEST(SyncStepGate, ANewerGenerationTakesTheWaitingPartOfADeadOne) {
  TestGate gate("dense block 2");
  auto dead = Part(100), survivor = Part(0), replacement = Part(101);
  ASSERT_TRUE(gate.Arrive(12, 1, 2, dead, /*generation=*/5).ok());
  auto again = Part(102);
  EXPECT_EQ(gate.Arrive(12, 1, 2, again, /*generation=*/5).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(gate.Arrive(12, 1, 2, again, /*generation=*/4).status().code(), StatusCode::kInvalidArgument);
  auto waiting = gate.Arrive(12, 1, 2, replacement, /*generation=*/6);
  ASSERT_TRUE(waiting.ok()) << waiting.status();
  EXPECT_TRUE(waiting->empty()) << "still waiting for rank 0";
  auto done = gate.Arrive(12, 0, 2, survivor, /*generation=*/2);
  ASSERT_TRUE(done.ok());
  EXPECT_THAT(Values(*done), ElementsAre(0, 101));
}

// A worker that lost its answer (the server it also pushed to was replaced) sends its part
// again as a later attempt: it takes the waiting part's place; the same attempt twice is
// still misuse, and a newer process beats any attempt of an older one.
TEST(SyncStepGate, ALaterAttemptOfTheSameProcessTakesItsWaitingPart) {
  TestGate gate("table 1");
  auto first = Part(100), resend = Part(101), survivor = Part(0);
  ASSERT_TRUE(gate.Arrive(7, 1, 2, first, SyncPartOrder(5, 0)).ok());
  auto same = Part(102);
  EXPECT_EQ(gate.Arrive(7, 1, 2, same, SyncPartOrder(5, 0)).status().code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(gate.Arrive(7, 1, 2, resend, SyncPartOrder(5, 1)).ok());
  EXPECT_EQ(gate.Arrive(7, 1, 2, same, SyncPartOrder(4, 9)).status().code(), StatusCode::kInvalidArgument)
      << "an older process, whatever its attempt";
  EXPECT_GT(SyncPartOrder(6, 0), SyncPartOrder(5, 70000)) << "attempts saturate below the next generation";
  auto done = gate.Arrive(7, 0, 2, survivor, SyncPartOrder(2, 0));
  ASSERT_TRUE(done.ok());
  EXPECT_THAT(Values(*done), ElementsAre(0, 101));
}

TEST(SyncStepGate, AClosedGateHandsBackTheWaitingAndRefusesTheRest) {
  TestGate gate("dense block 4");
  auto a = Part(1);
  ASSERT_TRUE(gate.Arrive(3, 1, 2, a).ok());
  auto waiting = gate.Close(Unavailable("restored"));
  ASSERT_EQ(waiting.size(), 1u);
  EXPECT_THAT(Values(waiting.at(3)), ElementsAre(1));
  auto b = Part(2);
  Status s = gate.Arrive(3, 0, 2, b).status();
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_EQ(s.message(), "restored");
  EXPECT_NE(b, nullptr);
}

}  // namespace
}  // namespace mtps::ps
