// Exit statuses (protocol/exit_codes.h): which outcomes are permanent for Kubernetes'
// podFailurePolicy, and what a node's run ends with after the scheduler's shutdown notice.
#include <gtest/gtest.h>

#include "protocol/exit_codes.h"
#include "protocol/scheduler_client.h"

namespace mtps::scheduler {
namespace {

TEST(ExitCodesTest, OnlyBadConfigBadDataAndAFailedJobArePermanent) {
  EXPECT_EQ(ExitCodeFor(Status::OK()), kExitOk);
  EXPECT_EQ(ExitCodeFor(InvalidArgument("tables[0].dim: must be in [1, 4096]")), kExitBadConfig);
  EXPECT_EQ(ExitCodeFor(DataLoss("train-0.mtb: checksum")), kExitBadData);
  EXPECT_EQ(ExitCodeFor(FailedPrecondition("the job failed")), kExitJobFailed);
  EXPECT_EQ(ExitCodeFor(Cancelled("SIGTERM")), kExitStopped);
  for (const Status& s : {Unavailable("lost the scheduler"), DeadlineExceeded("register"),
                          NotFound("fenced"), PermissionDenied("fenced by generation"),
                          Internal("bug"), ResourceExhausted("port")}) {
    EXPECT_EQ(ExitCodeFor(s), kExitRetryable) << s;
    EXPECT_FALSE(IsPermanentExit(ExitCodeFor(s))) << s;
  }
  for (int code : {kExitBadConfig, kExitBadData, kExitJobFailed}) EXPECT_TRUE(IsPermanentExit(code));
  for (int code : {kExitOk, kExitRetryable, kExitStopped, 137}) EXPECT_FALSE(IsPermanentExit(code));
}

TEST(ExitCodesTest, AShutdownNoticeSaysHowTheNodeExits) {
  EXPECT_EQ(ExitCodeFor(ShutdownNotice{"the job finished", false, false}.Outcome()), kExitOk);
  EXPECT_EQ(ExitCodeFor(ShutdownNotice{"worker 1 failed: bad records", true, false}.Outcome()),
            kExitJobFailed);
  const Status stopped = ShutdownNotice{"the scheduler was stopped", true, true}.Outcome();
  EXPECT_EQ(ExitCodeFor(stopped), kExitRetryable);
  EXPECT_NE(stopped.message().find("the scheduler was stopped"), std::string::npos) << stopped;
}

}  // namespace
}  // namespace mtps::scheduler
