// CURVE keys made in memory for tests: one job's allow-list (a scheduler, servers, workers,
// a tool) and each holder's view of it, plus helpers to write a keys directory.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "protocol/curve_keys.h"

namespace mtps::testing {

class TestJobKeys {
 public:
  TestJobKeys(int servers, int workers) {
    Add("scheduler", proto::Role::SCHEDULER);
    for (int i = 0; i < servers; ++i) Add("server-" + std::to_string(i), proto::Role::SERVER);
    for (int i = 0; i < workers; ++i) Add("worker-" + std::to_string(i), proto::Role::WORKER);
    Add("client-0", proto::Role::CLIENT);
    listener_ = *GenerateCurveKeyPair();
  }

  // The keys as node `name` holds them.
  std::shared_ptr<const JobKeys> For(const std::string& name) const {
    StatusOr<std::shared_ptr<const JobKeys>> keys =
        JobKeys::Make(holders_, listener_, name, pairs_.at(name));
    EXPECT_TRUE(keys.ok()) << keys.status();
    return keys.ok() ? *keys : nullptr;
  }

 private:
  void Add(const std::string& name, proto::Role role) {
    CurveKeyPair pair = *GenerateCurveKeyPair();
    holders_.push_back({name, role, pair.public_key});
    pairs_[name] = pair;
  }
  std::vector<KeyHolder> holders_;
  std::map<std::string, CurveKeyPair> pairs_;
  CurveKeyPair listener_;
};

}  // namespace mtps::testing
