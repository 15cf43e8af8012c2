// DenseParameters: registration, deterministic initialization and host copies of the
// flat dense parameter and gradient arrays.
#include "models/dense_parameters.h"

#include <glog/logging.h>

#include <algorithm>
#include <cmath>

#include "models/kernel_math.h"

namespace mtps::models {

template <typename T>
size_t DenseParameters<T>::Add(const std::string& name, size_t size, DenseInit init,
                               int fan_in, int fan_out) {
  CHECK(values_.data() == nullptr) << "DenseParameters::Add(" << name << ") after Finalize";
  CHECK(Find(name) == nullptr) << "dense block '" << name << "' registered twice";
  // Blocks start on 16-element boundaries so each is aligned for vector loads.
  size_t offset = (size_ + 15) / 16 * 16;
  blocks_.push_back({name, offset, size});
  pending_.push_back({init, fan_in, fan_out});
  size_ = offset + size;
  return offset;
}

template <typename T>
void DenseParameters<T>::Finalize(uint64_t seed) {
  values_ = DeviceArray<T>(backend_, size_);
  grads_ = DeviceArray<T>(backend_, size_);
  std::vector<T> host(size_, T(0));
  for (size_t b = 0; b < blocks_.size(); ++b) {
    const DenseBlock& block = blocks_[b];
    if (pending_[b].init == DenseInit::kOnes) {
      std::fill(host.begin() + block.offset, host.begin() + block.offset + block.size, T(1));
    }
    if (pending_[b].init != DenseInit::kGlorotUniform) continue;
    uint64_t name_hash = 1469598103934665603ull;  // FNV-1a
    for (char c : block.name) name_hash = (name_hash ^ static_cast<uint8_t>(c)) * 1099511628211ull;
    const double limit = std::sqrt(6.0 / std::max(1, pending_[b].fan_in + pending_[b].fan_out));
    const uint64_t block_seed = Mix64(seed ^ name_hash);
    for (size_t i = 0; i < block.size; ++i) {
      host[block.offset + i] = static_cast<T>((2.0 * HashUniform(block_seed, i) - 1.0) * limit);
    }
  }
  CopyValuesFromHost(host.data());
}

template <typename T>
const DenseBlock* DenseParameters<T>::Find(const std::string& name) const {
  for (const DenseBlock& b : blocks_) {
    if (b.name == name) return &b;
  }
  return nullptr;
}

template <typename T>
void DenseParameters<T>::CopyValuesToHost(T* host) const {
  backend_->CopyToHost(values_.data(), host, size_ * sizeof(T));
}
template <typename T>
void DenseParameters<T>::CopyValuesFromHost(const T* host) {
  backend_->CopyToDevice(host, values_.data(), size_ * sizeof(T));
}
template <typename T>
void DenseParameters<T>::CopyGradsToHost(T* host) const {
  backend_->CopyToHost(grads_.data(), host, size_ * sizeof(T));
}
template <typename T>
void DenseParameters<T>::CopyGradsFromHost(const T* host) {
  backend_->CopyToDevice(host, grads_.data(), size_ * sizeof(T));
}

template <typename T>
Status DenseParameters<T>::SetBlockValues(const std::string& name, const T* host, size_t size) {
  const DenseBlock* block = Find(name);
  if (block == nullptr) return NotFound("dense block '" + name + "' does not exist");
  if (block->size != size) {
    return InvalidArgument("dense block '" + name + "' holds " + std::to_string(block->size) +
                           " values, got " + std::to_string(size));
  }
  backend_->CopyToDevice(host, values_.data() + block->offset, size * sizeof(T));
  return Status::OK();
}

template class DenseParameters<float>;
template class DenseParameters<double>;

}  // namespace mtps::models
