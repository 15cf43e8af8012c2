// The default Env: one POSIX file system and one steady clock per process, never
// destroyed, so that they outlive every thread that may still use them at exit.
#include "base/env.h"

namespace mtps {

FileSystem* DefaultFileSystem() {
  static FileSystem* const fs = NewPosixFileSystem().release();
  return fs;
}

const Clock* DefaultClock() {
  static const Clock* const clock = new SteadyClock();
  return clock;
}

}  // namespace mtps
