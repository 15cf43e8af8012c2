// MMoE (Ma et al. 2018): E expert MLPs over the shared input, computed as one grouped
// MLP, and one softmax gate per task mixing all experts.
#include <vector>

#include "models/gate.h"
#include "models/mlp.h"
#include "models/trunk.h"

namespace mtps::models {
namespace {

template <typename T>
class MmoeTrunk final : public Trunk<T> {
 public:
  MmoeTrunk(Backend<T>* backend, DenseParameters<T>* params, const ModelSpec& spec, int in,
            int tasks, int max_batch)
      : backend_(backend),
        width_(spec.expert_units.back()),
        experts_(backend, params, "mmoe/experts",
                 {.in = in, .units = spec.expert_units, .groups = spec.experts,
                  .relu_last = true, .dropout = spec.dropout},
                 max_batch) {
    gates_.reserve(tasks);
    for (int t = 0; t < tasks; ++t) {
      gates_.emplace_back(backend, params, "mmoe/gate" + std::to_string(t), in,
                          ExpertRanges{0, spec.experts, 0, 0}, width_, max_batch);
    }
  }

  int out_cols() const override { return width_; }
  void Forward(MatrixView<T> x, bool train, uint64_t step_seed) override {
    experts_.Forward(x, train, step_seed);
    for (Gate<T>& g : gates_) g.Forward(x, experts_.out(x.rows));
  }
  MatrixView<T> task_out(int task, int batch) override { return gates_[task].out(batch); }
  MatrixView<T> task_out_grad(int task, int batch) override {
    return gates_[task].out_grad(batch);
  }
  void ZeroGrads(int batch) override {
    MatrixView<T> eg = experts_.out_grad(batch);
    backend_->Fill(eg.data, static_cast<size_t>(batch) * eg.ld, T(0));
    for (Gate<T>& g : gates_) {
      backend_->Fill(g.out_grad(batch).data, static_cast<size_t>(batch) * width_, T(0));
    }
  }
  void Backward(MatrixView<T> x, MatrixView<T>* dx) override {
    const int batch = x.rows;
    for (Gate<T>& g : gates_) g.Backward(x, experts_.out(batch), experts_.out_grad(batch), dx);
    experts_.Backward(x, dx);
  }

 private:
  Backend<T>* backend_;
  int width_;
  Mlp<T> experts_;
  std::vector<Gate<T>> gates_;
};

}  // namespace

template <typename T>
std::unique_ptr<Trunk<T>> MakeMmoeTrunk(Backend<T>* backend, DenseParameters<T>* params,
                                        const ModelSpec& spec, int in, int tasks,
                                        int max_batch) {
  return std::make_unique<MmoeTrunk<T>>(backend, params, spec, in, tasks, max_batch);
}

template std::unique_ptr<Trunk<float>> MakeMmoeTrunk(Backend<float>*, DenseParameters<float>*,
                                                     const ModelSpec&, int, int, int);
template std::unique_ptr<Trunk<double>> MakeMmoeTrunk(Backend<double>*,
                                                      DenseParameters<double>*,
                                                      const ModelSpec&, int, int, int);

}  // namespace mtps::models
