// PushResult: what a sparse or dense push did, shared by the tables on a server, the
// server's replies and ps::Client, so the same counts mean the same thing everywhere.
#pragma once

#include <cstdint>

namespace mtps::ps {

struct PushResult {
  uint64_t applied = 0;  // rows or blocks applied (or buffered in sync mode)
  uint64_t dropped = 0;  // keys not yet admitted: gradient dropped and counted
};

}  // namespace mtps::ps
