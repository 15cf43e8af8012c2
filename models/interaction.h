// Interaction: the layer between the input matrix X = [field embeddings | dense] and the
// trunk (model.interaction): DLRM's pairwise dots or the FM term appended to X, or a
// DCN-v2 cross network in X's place. Any trunk reads its output.
//
//   std::unique_ptr<Interaction<float>> inter =
//       MakeInteraction(backend, &params, spec.model.interaction, x_cols, fields, dim, max_batch);
//   inter->Forward(x);                     // inter->out(B): [B x inter->out_cols()]
//   trunk->Forward(inter->out(B), ...);    // ... trunk->Backward(inter->out(B), &g) with
//   inter->Backward(x, &dx);               //     g = inter->out_grad(B); dx accumulated
//
// Buffers are allocated once for max_batch. Not thread-safe.
#pragma once

#include <memory>

#include "models/backend.h"
#include "models/dense_parameters.h"
#include "models/tensor.h"
#include "protocol/job_spec.h"

namespace mtps::models {

template <typename T>
class Interaction {
 public:
  virtual ~Interaction() = default;
  virtual int out_cols() const = 0;
  virtual void Forward(MatrixView<T> x) = 0;
  virtual MatrixView<T> out(int batch) = 0;
  // Zeroed by Forward(); consumers accumulate dloss/dout into it.
  virtual MatrixView<T> out_grad(int batch) = 0;
  // Reads out_grad(); writes the layer's weight gradients; accumulates dloss/dx into dx.
  virtual void Backward(MatrixView<T> x, MatrixView<T>* dx) = 0;
};

// `in`: columns of X; its first `fields` * `dim` columns are the sparse fields' embeddings
// (dot and fm read those). nullptr for kind none.
template <typename T>
std::unique_ptr<Interaction<T>> MakeInteraction(Backend<T>* backend, DenseParameters<T>* params,
                                                const InteractionSpec& spec, int in, int fields,
                                                int dim, int max_batch);

// [X | pairwise dots of the fields] (kDot) or [X | FM second-order term per column] (kFm).
template <typename T>
std::unique_ptr<Interaction<T>> MakeFieldInteraction(Backend<T>* backend,
                                                     InteractionSpec::Kind kind, int in,
                                                     int fields, int dim, int max_batch);
// DCN-v2: spec.cross_layers cross layers, full-rank or of rank spec.low_rank.
template <typename T>
std::unique_ptr<Interaction<T>> MakeCrossNetwork(Backend<T>* backend, DenseParameters<T>* params,
                                                 const InteractionSpec& spec, int in,
                                                 int max_batch);

}  // namespace mtps::models
