// DenseParameters: every dense weight of a model in ONE flat array of backend memory,
// with a gradient array of the same shape, cut into named blocks ("mmoe/gate0/w").
// An optimizer (ps/optimizer.h) or the parameter-server client works on the flat
// arrays or block by block; on the CPU backend values() and grads() are host memory.
//
//   DenseParameters<float>& p = model->parameters();
//   for (const DenseBlock& b : p.blocks()) push(b.name, p.grads() + b.offset, b.size);
//   std::vector<float> host(p.size());
//   p.CopyValuesToHost(host.data());  // any backend
//
// Blocks start on 16-value boundaries, so size() may exceed the sum of block sizes; the
// gaps stay 0 in both arrays, so an optimizer may run over the whole flat array.
// Layers register blocks while the model is built; Finalize() then allocates and
// initializes them, deterministically from the seed. Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "models/backend.h"
#include "models/tensor.h"
#include "base/status.h"

namespace mtps::models {

struct DenseBlock {
  std::string name;
  size_t offset = 0;  // into values() / grads()
  size_t size = 0;
};

enum class DenseInit {
  kGlorotUniform,  // U(-a, a), a = sqrt(6 / (fan_in + fan_out))
  kZeros,
  kOnes,  // layer-norm gains
};

template <typename T>
class DenseParameters {
 public:
  explicit DenseParameters(Backend<T>* backend) : backend_(backend) {}

  // Registers a block; returns its offset. Only before Finalize().
  size_t Add(const std::string& name, size_t size, DenseInit init, int fan_in = 0,
             int fan_out = 0);
  // Allocates both arrays and draws the initial values from (seed, block name, index).
  void Finalize(uint64_t seed);

  T* values() { return values_.data(); }
  T* grads() { return grads_.data(); }
  const T* values() const { return values_.data(); }
  const T* grads() const { return grads_.data(); }
  size_t size() const { return size_; }
  const std::vector<DenseBlock>& blocks() const { return blocks_; }
  const DenseBlock* Find(const std::string& name) const;

  // Whole-array copies between backend memory and host buffers of size() elements.
  void CopyValuesToHost(T* host) const;
  void CopyValuesFromHost(const T* host);
  void CopyGradsToHost(T* host) const;
  void CopyGradsFromHost(const T* host);
  // One block's values from the host; refuses an unknown name or a wrong size.
  Status SetBlockValues(const std::string& name, const T* host, size_t size);

 private:
  struct Pending {
    DenseInit init;
    int fan_in, fan_out;
  };
  Backend<T>* backend_;
  std::vector<DenseBlock> blocks_;
  std::vector<Pending> pending_;
  size_t size_ = 0;
  DeviceArray<T> values_;
  DeviceArray<T> grads_;
};

}  // namespace mtps::models
