// PLE (Tang et al. 2020): ple_levels CGC levels. Each level has ple_task_experts experts
// per task and ple_shared_experts shared ones; task k's gate mixes its own experts and
// the shared ones, and (below the top level) a shared gate mixes all experts to feed the
// next level's shared experts. A level's experts sit side by side in one matrix, so a
// gate reads them without copies: [task 0 experts | ... | task K-1 experts | shared].
#include <memory>
#include <vector>

#include "models/gate.h"
#include "models/mlp.h"
#include "models/trunk.h"

namespace mtps::models {
namespace {

template <typename T>
class PleTrunk final : public Trunk<T> {
 public:
  PleTrunk(Backend<T>* backend, DenseParameters<T>* params, const ModelSpec& spec, int in,
           int tasks, int max_batch)
      : backend_(backend), tasks_(tasks), width_(spec.expert_units.back()) {
    const int et = spec.ple_task_experts, es = spec.ple_shared_experts;
    const int all = tasks * et + es;
    levels_.resize(spec.ple_levels);
    for (int l = 0; l < spec.ple_levels; ++l) {
      Level& level = levels_[l];
      const std::string prefix = "ple/level" + std::to_string(l);
      const int level_in = l == 0 ? in : width_;
      level.cols = all * width_;
      level.experts = DeviceArray<T>(backend, static_cast<size_t>(max_batch) * level.cols);
      level.experts_grad = DeviceArray<T>(backend, static_cast<size_t>(max_batch) * level.cols);
      auto group = [&](const std::string& name, int count, int first_expert) {
        return std::make_unique<Mlp<T>>(
            backend, params, prefix + "/" + name,
            MlpOptions{.in = level_in, .units = spec.expert_units, .groups = count,
                       .relu_last = true, .dropout = spec.dropout},
            max_batch, level.experts.data() + first_expert * width_,
            level.experts_grad.data() + first_expert * width_, level.cols);
      };
      for (int k = 0; k < tasks; ++k) {
        level.task_groups.push_back(group("task" + std::to_string(k) + "_experts", et, k * et));
        level.task_gates.push_back(std::make_unique<Gate<T>>(
            backend, params, prefix + "/task" + std::to_string(k) + "_gate", level_in,
            ExpertRanges{k * et, et, tasks * et, es}, width_, max_batch));
      }
      level.shared_group = group("shared_experts", es, tasks * et);
      if (l + 1 < spec.ple_levels) {
        level.shared_gate = std::make_unique<Gate<T>>(backend, params, prefix + "/shared_gate",
                                                      level_in, ExpertRanges{0, all, 0, 0},
                                                      width_, max_batch);
      }
    }
  }

  int out_cols() const override { return width_; }

  void Forward(MatrixView<T> x, bool train, uint64_t step_seed) override {
    const int batch = x.rows;
    for (size_t l = 0; l < levels_.size(); ++l) {
      Level& level = levels_[l];
      MatrixView<T> experts = level.experts.matrix(batch, level.cols);
      for (int k = 0; k < tasks_; ++k) {
        level.task_groups[k]->Forward(TaskIn(l, k, x), train, step_seed);
      }
      level.shared_group->Forward(SharedIn(l, x), train, step_seed);
      for (int k = 0; k < tasks_; ++k) level.task_gates[k]->Forward(TaskIn(l, k, x), experts);
      if (level.shared_gate) level.shared_gate->Forward(SharedIn(l, x), experts);
    }
  }

  MatrixView<T> task_out(int task, int batch) override {
    return levels_.back().task_gates[task]->out(batch);
  }
  MatrixView<T> task_out_grad(int task, int batch) override {
    return levels_.back().task_gates[task]->out_grad(batch);
  }

  void ZeroGrads(int batch) override {
    for (Level& level : levels_) {
      backend_->Fill(level.experts_grad.data(), static_cast<size_t>(batch) * level.cols, T(0));
      for (auto& g : level.task_gates) Zero(g->out_grad(batch));
      if (level.shared_gate) Zero(level.shared_gate->out_grad(batch));
    }
  }

  void Backward(MatrixView<T> x, MatrixView<T>* dx) override {
    const int batch = x.rows;
    for (size_t l = levels_.size(); l-- > 0;) {
      Level& level = levels_[l];
      MatrixView<T> experts = level.experts.matrix(batch, level.cols);
      MatrixView<T> experts_grad = level.experts_grad.matrix(batch, level.cols);
      for (int k = 0; k < tasks_; ++k) {
        level.task_gates[k]->Backward(TaskIn(l, k, x), experts, experts_grad,
                                      TaskInGrad(l, k, dx, batch));
      }
      if (level.shared_gate) {
        level.shared_gate->Backward(SharedIn(l, x), experts, experts_grad,
                                    SharedInGrad(l, dx, batch));
      }
      for (int k = 0; k < tasks_; ++k) {
        level.task_groups[k]->Backward(TaskIn(l, k, x), TaskInGrad(l, k, dx, batch));
      }
      level.shared_group->Backward(SharedIn(l, x), SharedInGrad(l, dx, batch));
    }
  }

 private:
  struct Level {
    int cols = 0;
    DeviceArray<T> experts, experts_grad;
    std::vector<std::unique_ptr<Mlp<T>>> task_groups;
    std::unique_ptr<Mlp<T>> shared_group;
    std::vector<std::unique_ptr<Gate<T>>> task_gates;
    std::unique_ptr<Gate<T>> shared_gate;  // absent on the top level
  };

  void Zero(MatrixView<T> m) {
    backend_->Fill(m.data, static_cast<size_t>(m.rows) * m.ld, T(0));
  }
  // Inputs of level l: X on level 0, else the previous level's gate outputs.
  MatrixView<T> TaskIn(size_t l, int k, MatrixView<T> x) {
    return l == 0 ? x : levels_[l - 1].task_gates[k]->out(x.rows);
  }
  MatrixView<T> SharedIn(size_t l, MatrixView<T> x) {
    return l == 0 ? x : levels_[l - 1].shared_gate->out(x.rows);
  }
  // Where their gradients go: dx (maybe null) on level 0, else the previous level's
  // gate output gradients.
  MatrixView<T>* TaskInGrad(size_t l, int k, MatrixView<T>* dx, int batch) {
    if (l == 0) return dx;
    scratch_ = levels_[l - 1].task_gates[k]->out_grad(batch);
    return &scratch_;
  }
  MatrixView<T>* SharedInGrad(size_t l, MatrixView<T>* dx, int batch) {
    if (l == 0) return dx;
    scratch_ = levels_[l - 1].shared_gate->out_grad(batch);
    return &scratch_;
  }

  Backend<T>* backend_;
  int tasks_;
  int width_;
  std::vector<Level> levels_;
  MatrixView<T> scratch_;  // the view TaskInGrad/SharedInGrad point at
};

}  // namespace

template <typename T>
std::unique_ptr<Trunk<T>> MakePleTrunk(Backend<T>* backend, DenseParameters<T>* params,
                                       const ModelSpec& spec, int in, int tasks, int max_batch) {
  return std::make_unique<PleTrunk<T>>(backend, params, spec, in, tasks, max_batch);
}

template std::unique_ptr<Trunk<float>> MakePleTrunk(Backend<float>*, DenseParameters<float>*,
                                                    const ModelSpec&, int, int, int);
template std::unique_ptr<Trunk<double>> MakePleTrunk(Backend<double>*, DenseParameters<double>*,
                                                     const ModelSpec&, int, int, int);

}  // namespace mtps::models
