// Env: what a part reads of the machine it runs on — the file system and the clock —
// passed down so that tests can put a fault-injecting file system or a ManualClock there.
//
//   ServerOptions options;                              // production: the real machine
//   options.env = Env{.fs = &faulty_fs};                // a test: failing disk, real clock
//   SchedulerClientOptions o{.env = Env{.clock = &manual_clock}};
//
// An Env holds pointers and owns nothing: whoever builds one keeps what it points to alive
// for as long as anything uses it. The defaults are the POSIX file system and the steady
// clock, which live as long as the process.
// Thread-safety: as the file system and clock it points to (both defaults: any thread).
#pragma once

#include "base/clock.h"
#include "base/file_system.h"

namespace mtps {

// The process's POSIX file system and steady clock (created on first use, never destroyed).
FileSystem* DefaultFileSystem();
const Clock* DefaultClock();

struct Env {
  FileSystem* fs = DefaultFileSystem();
  const Clock* clock = DefaultClock();
};

}  // namespace mtps
