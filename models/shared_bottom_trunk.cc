// The two simplest trunks: the shared-bottom MLP, and the identity that ESMM uses.
#include "models/mlp.h"
#include "models/trunk.h"

namespace mtps::models {
namespace {

template <typename T>
class SharedBottomTrunk final : public Trunk<T> {
 public:
  SharedBottomTrunk(Backend<T>* backend, DenseParameters<T>* params, const ModelSpec& spec,
                    int in, int max_batch)
      : backend_(backend),
        bottom_(backend, params, "shared_bottom/bottom",
                {.in = in, .units = spec.bottom_units, .groups = 1, .relu_last = true,
                 .dropout = spec.dropout},
                max_batch) {}

  int out_cols() const override { return bottom_.out_cols(); }
  void Forward(MatrixView<T> x, bool train, uint64_t step_seed) override {
    bottom_.Forward(x, train, step_seed);
  }
  MatrixView<T> task_out(int, int batch) override { return bottom_.out(batch); }
  MatrixView<T> task_out_grad(int, int batch) override { return bottom_.out_grad(batch); }
  void ZeroGrads(int batch) override {
    backend_->Fill(bottom_.out_grad(batch).data, static_cast<size_t>(batch) * out_cols(), T(0));
  }
  void Backward(MatrixView<T> x, MatrixView<T>* dx) override { bottom_.Backward(x, dx); }

 private:
  Backend<T>* backend_;
  Mlp<T> bottom_;
};

template <typename T>
class IdentityTrunk final : public Trunk<T> {
 public:
  IdentityTrunk(Backend<T>* backend, int in, int max_batch)
      : backend_(backend), in_(in), grad_(backend, static_cast<size_t>(max_batch) * in) {}

  int out_cols() const override { return in_; }
  void Forward(MatrixView<T> x, bool, uint64_t) override { x_ = x; }
  MatrixView<T> task_out(int, int batch) override { return x_.with_rows(batch); }
  MatrixView<T> task_out_grad(int, int batch) override { return grad_.matrix(batch, in_); }
  void ZeroGrads(int batch) override {
    backend_->Fill(grad_.data(), static_cast<size_t>(batch) * in_, T(0));
  }
  void Backward(MatrixView<T> x, MatrixView<T>* dx) override {
    if (dx != nullptr) {
      backend_->CopyBlock(x.rows, in_, grad_.data(), in_, dx->data, dx->ld, true);
    }
  }

 private:
  Backend<T>* backend_;
  int in_;
  DeviceArray<T> grad_;
  MatrixView<T> x_;
};

}  // namespace

template <typename T>
std::unique_ptr<Trunk<T>> MakeIdentityTrunk(Backend<T>* backend, int in, int max_batch) {
  return std::make_unique<IdentityTrunk<T>>(backend, in, max_batch);
}

template <typename T>
std::unique_ptr<Trunk<T>> MakeSharedBottomTrunk(Backend<T>* backend, DenseParameters<T>* params,
                                                const ModelSpec& spec, int in, int max_batch) {
  return std::make_unique<SharedBottomTrunk<T>>(backend, params, spec, in, max_batch);
}

template std::unique_ptr<Trunk<float>> MakeIdentityTrunk(Backend<float>*, int, int);
template std::unique_ptr<Trunk<double>> MakeIdentityTrunk(Backend<double>*, int, int);
template std::unique_ptr<Trunk<float>> MakeSharedBottomTrunk(Backend<float>*,
                                                             DenseParameters<float>*,
                                                             const ModelSpec&, int, int);
template std::unique_ptr<Trunk<double>> MakeSharedBottomTrunk(Backend<double>*,
                                                              DenseParameters<double>*,
                                                              const ModelSpec&, int, int);

}  // namespace mtps::models
