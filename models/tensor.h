// Matrix views and owning device arrays: the two ways model code holds numbers.
// A view is a pointer plus shape on the backend's memory (host memory for "cpu").
//
//   DeviceArray<float> h(backend, max_batch * 64);       // allocated once, zeroed
//   MatrixView<float> y = h.matrix(batch, 64);           // rows = this batch
//   backend->Gemm(false, false, batch, 64, in, 1, x.data, x.ld, w, 64, 0, y.data, y.ld);
//
// Views are plain values; DeviceArray is move-only and not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

namespace mtps::models {

template <typename T>
class Backend;

// Row-major matrix on a backend's memory: element (r, c) lives at data[r * ld + c].
// `ld` >= cols lets a view name a column slice of a wider matrix without copying.
template <typename T>
struct MatrixView {
  T* data = nullptr;
  int rows = 0;
  int cols = 0;
  int ld = 0;

  // Columns [begin, begin + count) of this view.
  MatrixView columns(int begin, int count) const { return {data + begin, rows, count, ld}; }
  MatrixView with_rows(int r) const { return {data, r, cols, ld}; }
};

// An owning array of `Elem` in a backend's memory, zero-filled at allocation. Grows only
// through Reserve(), which keeps the current buffer when it is big enough, so a loop
// that reserves per step allocates only while its sizes still rise.
template <typename Elem, typename T = Elem>
class DeviceArray {
 public:
  DeviceArray() = default;
  DeviceArray(Backend<T>* backend, size_t size) : backend_(backend) { Reserve(size); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  DeviceArray(DeviceArray&& o) noexcept { *this = std::move(o); }
  DeviceArray& operator=(DeviceArray&& o) noexcept {
    std::swap(backend_, o.backend_);
    std::swap(data_, o.data_);
    std::swap(capacity_, o.capacity_);
    return *this;
  }
  ~DeviceArray() {
    if (data_ != nullptr) backend_->FreeBytes(data_);
  }

  void set_backend(Backend<T>* backend) { backend_ = backend; }

  // Makes room for `size` elements; contents are lost (zeroed) when the buffer grows.
  void Reserve(size_t size) {
    if (size <= capacity_ && data_ != nullptr) return;
    if (data_ != nullptr) backend_->FreeBytes(data_);
    size_t grown = capacity_ * 2 > size ? capacity_ * 2 : size;
    if (grown == 0) grown = 1;
    data_ = static_cast<Elem*>(backend_->AllocateBytes(grown * sizeof(Elem)));
    capacity_ = grown;
  }

  Elem* data() { return data_; }
  const Elem* data() const { return data_; }
  size_t capacity() const { return capacity_; }
  MatrixView<Elem> matrix(int rows, int cols) { return {data_, rows, cols, cols}; }

 private:
  Backend<T>* backend_ = nullptr;
  Elem* data_ = nullptr;
  size_t capacity_ = 0;
};

}  // namespace mtps::models
