// Exit statuses of every mtps binary and which of them a restart can cure: the one table
// that launch/k8s/ turns into each Job's podFailurePolicy (docs: launch/k8s/README.md).
//
//   return mtps::ExitCodeFor(status);   // in a main, after the run
//
// | code | name            | meaning                                            | Kubernetes        |
// |------|-----------------|----------------------------------------------------|-------------------|
// | 0    | kExitOk         | the job finished (this process's part is done)     | index completes   |
// | 1    | kExitRetryable  | lost peer or scheduler, fenced, timeout, crash-like | pod replaced      |
// | 2    | kExitBadConfig  | bad flags, job spec or protocol version            | FailJob           |
// | 3    | kExitBadData    | bad or unreadable training data, corrupt files     | FailJob           |
// | 4    | kExitJobFailed  | the scheduler ended the job for a permanent reason | FailJob           |
// | 143  | kExitStopped    | SIGTERM: a clean stop, e.g. preemption or drain     | pod replaced      |
//
// A process killed by a signal it does not handle reports 128 + the signal (137 for
// SIGKILL, 134 for an abort): retryable too. Only 2, 3 and 4 are permanent.
#pragma once

#include "base/status.h"

namespace mtps {

inline constexpr int kExitOk = 0;
inline constexpr int kExitRetryable = 1;
inline constexpr int kExitBadConfig = 2;
inline constexpr int kExitBadData = 3;
inline constexpr int kExitJobFailed = 4;
// 128 + SIGTERM: what a shell or the kubelet reports for a process ended by SIGTERM, so a
// clean stop and a killed process read the same (retryable) way.
inline constexpr int kExitStopped = 143;

// The exit status for the outcome of a run. Permanent only where a restart cannot help:
// an invalid argument (spec, flags), damaged data, a failed precondition (the job was
// declared failed, a spec hash differs). Everything else may pass on a restart.
inline int ExitCodeFor(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk: return kExitOk;
    case StatusCode::kInvalidArgument:
    case StatusCode::kVersionMismatch: return kExitBadConfig;
    case StatusCode::kDataLoss: return kExitBadData;
    case StatusCode::kFailedPrecondition: return kExitJobFailed;
    case StatusCode::kCancelled: return kExitStopped;
    default: return kExitRetryable;
  }
}

inline bool IsPermanentExit(int code) {
  return code == kExitBadConfig || code == kExitBadData || code == kExitJobFailed;
}

}  // namespace mtps
