// Force-included in the fuzz build (CMakeLists.txt, MTPS_FUZZ): lets clang 16+ compile
// Debian bookworm's Cap'n Proto 0.9 headers in C++20.
//
// capnp/blob.h compares `const char*` with kj::StringPtr; kj declares that operator only
// before C++20 and relies on C++20's reversed member candidates, which clang 16+ does not
// find from inside namespace capnp ("invalid operands to binary expression"). Declaring
// it again is harmless: it only forwards to StringPtr's own operator.
#pragma once

#include <kj/string.h>

namespace kj {
// StringPtr(a) on both: `b == a` would pick this very function (reversed) and recurse.
inline bool operator==(const char* a, const StringPtr& b) { return b == StringPtr(a); }
inline bool operator!=(const char* a, const StringPtr& b) { return !(b == StringPtr(a)); }
}  // namespace kj
