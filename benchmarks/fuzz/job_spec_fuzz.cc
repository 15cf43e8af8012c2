// libFuzzer target: the job spec parser. Each input is YAML text: parsed and validated,
// and a spec that passes is turned into the feature map every worker builds from it.
#include <cstdint>
#include <string>

#include <glog/logging.h>

#include "protocol/job_spec.h"
#include "worker/data/feature_map.h"

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  FLAGS_minloglevel = 3;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  mtps::StatusOr<mtps::JobSpec> spec = mtps::ParseJobSpec(text, "fuzz input");
  if (spec.ok()) (void)mtps::FeatureMap::Create(*spec);
  return 0;
}
