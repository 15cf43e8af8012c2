// Views of the packed numbers that messages carry as Data blobs (keys as little-endian
// uint64, values and gradients as little-endian float32), read and written in place.
//
//   MTPS_ASSIGN_OR_RETURN(std::span<const uint64_t> keys, PackedU64s(pull.getKeys(), "keys"));
//   std::span<float> values = InitPackedFloats(reply.initValues(n * dim * sizeof(float)));
//
// The read views fail with kInvalidArgument, naming the field and its size, when the blob
// is not a whole number of elements, and with kInternal when it is not aligned (blobs of a
// message read through IncomingMessage always are). Thread-compatible: a view is as safe as
// the message it points into, and lives no longer than it.
#pragma once

#include <bit>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include <capnp/blob.h>

#include "base/status.h"

namespace mtps {

static_assert(std::endian::native == std::endian::little,
              "packed Data blobs are little-endian and read in place");

template <typename T>
StatusOr<std::span<const T>> PackedSpan(capnp::Data::Reader data, std::string_view field) {
  if (data.size() % sizeof(T) != 0) {
    return InvalidArgument(std::string(field) + " holds " + std::to_string(data.size()) +
                           " bytes, not a whole number of " + std::to_string(sizeof(T)) +
                           "-byte elements");
  }
  if (reinterpret_cast<uintptr_t>(data.begin()) % alignof(T) != 0) {
    return Internal(std::string(field) + " is not " + std::to_string(alignof(T)) +
                    "-byte aligned in memory");
  }
  return std::span<const T>(reinterpret_cast<const T*>(data.begin()), data.size() / sizeof(T));
}

inline StatusOr<std::span<const uint64_t>> PackedU64s(capnp::Data::Reader data,
                                                       std::string_view field) {
  return PackedSpan<uint64_t>(data, field);
}
inline StatusOr<std::span<const float>> PackedFloats(capnp::Data::Reader data,
                                                     std::string_view field) {
  return PackedSpan<float>(data, field);
}

// A writable view of a blob just made by init*(n * sizeof(T)) in a message being built.
// Cap'n Proto starts every blob on a word boundary, so this is aligned; trailing bytes that
// do not make a whole element are not part of the view.
template <typename T>
std::span<T> InitPackedSpan(capnp::Data::Builder data) {
  return std::span<T>(reinterpret_cast<T*>(data.begin()), data.size() / sizeof(T));
}
inline std::span<uint64_t> InitPackedU64s(capnp::Data::Builder data) {
  return InitPackedSpan<uint64_t>(data);
}
inline std::span<float> InitPackedFloats(capnp::Data::Builder data) {
  return InitPackedSpan<float>(data);
}

}  // namespace mtps
