// Tests of base/hash.h and base/crc32c.h: the hashes match their reference values (keys
// and checksums written by one build must be read by every other), and the mixers are
// bijections that spread nearby inputs.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "base/crc32c.h"
#include "base/hash.h"

namespace mtps {
namespace {

TEST(Xxh64, MatchesReferenceImplementation) {
  // Published XXH64 values (the xxHash project's test vectors and sanity checks).
  EXPECT_EQ(Xxh64("", 0, 0), 0xef46db3751d8e999ULL);
  EXPECT_EQ(Xxh64("abc", 3, 0), 0x44bc2cf5ad770999ULL);
  EXPECT_EQ(Xxh64String(std::string_view("user_id\0", 8)), 0xe5a6ad54dec8a0beULL);
  std::string bytes;
  for (int i = 0; i < 100; ++i) bytes.push_back(static_cast<char>(i));
  EXPECT_EQ(Xxh64String(bytes, 5), 0x9c502a83dcb7c69eULL);
  EXPECT_EQ(Xxh64String("0123456789abcdefghijklmnopqrstuvwxyz", 0x9E3779B97F4A7C15ULL),
            0x4bc30215fecdf207ULL);
}

TEST(Mix64, IsSplitMix64AndSpreadsNeighbours) {
  // splitmix64 seeded with 0: its first output is Mix64(0) (reference sequence value).
  EXPECT_EQ(Mix64(0), 0xe220a8397b1dcdafULL);
  std::set<uint64_t> seen;
  for (uint64_t i = 0; i < 4096; ++i) seen.insert(Mix64(i) >> 52);  // top 12 bits
  EXPECT_GT(seen.size(), 2500u);  // a bad mixer of a counter hits few top-bit buckets
}

TEST(MixKey, SaltsGiveUnrelatedValues) {
  int equal_low_bits = 0;
  for (uint64_t k = 1; k <= 1000; ++k) {
    EXPECT_NE(MixKey(k, 1), MixKey(k, 2));
    equal_low_bits += (MixKey(k, 1) & 0xff) == (MixKey(k, 2) & 0xff);
  }
  EXPECT_LT(equal_low_bits, 20);  // ~4 expected by chance
}

TEST(Crc32c, KnownValueAndBothPathsAgree) {
  const char* text = "123456789";
  EXPECT_EQ(Crc32c(text, 9), 0xE3069283u);
  std::vector<uint8_t> data(10007);
  std::mt19937 rng(1);
  for (auto& b : data) b = static_cast<uint8_t>(rng());
  EXPECT_EQ(Crc32c(data.data(), data.size()), Crc32cExtendPortable(0, data.data(), data.size()));
  const uint32_t split =
      Crc32cExtend(Crc32c(data.data(), 1234), data.data() + 1234, data.size() - 1234);
  EXPECT_EQ(split, Crc32c(data.data(), data.size()));
}

}  // namespace
}  // namespace mtps
