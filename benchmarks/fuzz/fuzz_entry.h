// The two libFuzzer entry points shared by the harness-based targets: quiet logging, and
// one long-lived Harness (sockets, maps, scratch files made once) fed every input.
//
//   struct Harness { void Run(const uint8_t* data, size_t size); };
//   MTPS_FUZZ_ENTRY_POINTS(mtps::fuzz::Harness)
#pragma once

#include <cstddef>
#include <cstdint>

#include <glog/logging.h>

// Refused inputs log warnings by the thousand; only fatal lines are kept.
#define MTPS_FUZZ_ENTRY_POINTS(HarnessType)                                  \
  extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {     \
    FLAGS_minloglevel = 3;                                                   \
    return 0;                                                                \
  }                                                                          \
  extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {  \
    static auto* harness = new HarnessType();                                \
    harness->Run(data, size);                                                \
    return 0;                                                                \
  }
