// Field interactions appended to X: DLRM's pairwise dot products of the sparse fields'
// embeddings, or the factorization machine's second-order term; no weights of their own.
#include "models/interaction.h"

namespace mtps::models {
namespace {

template <typename T>
class FieldInteraction final : public Interaction<T> {
 public:
  FieldInteraction(Backend<T>* backend, InteractionSpec::Kind kind, int in, int fields, int dim,
                   int max_batch)
      : backend_(backend),
        dot_(kind == InteractionSpec::Kind::kDot),
        in_(in),
        fields_(fields),
        dim_(dim),
        extra_(dot_ ? fields * (fields - 1) / 2 : dim),
        out_(backend, static_cast<size_t>(max_batch) * (in + extra_)),
        out_grad_(backend, static_cast<size_t>(max_batch) * (in + extra_)) {}

  int out_cols() const override { return in_ + extra_; }
  MatrixView<T> out(int batch) override { return out_.matrix(batch, out_cols()); }
  MatrixView<T> out_grad(int batch) override { return out_grad_.matrix(batch, out_cols()); }

  void Forward(MatrixView<T> x) override {
    const int batch = x.rows;
    MatrixView<T> o = out(batch);
    backend_->CopyBlock(batch, in_, x.data, x.ld, o.data, o.ld, false);
    if (dot_) {
      backend_->PairwiseDot(batch, fields_, dim_, x.data, x.ld, o.data + in_, o.ld);
    } else {
      backend_->FmInteraction(batch, fields_, dim_, x.data, x.ld, o.data + in_, o.ld);
    }
    backend_->Fill(out_grad_.data(), static_cast<size_t>(batch) * out_cols(), T(0));
  }

  void Backward(MatrixView<T> x, MatrixView<T>* dx) override {
    const int batch = x.rows;
    MatrixView<T> g = out_grad(batch);
    backend_->CopyBlock(batch, in_, g.data, g.ld, dx->data, dx->ld, true);
    if (dot_) {
      backend_->PairwiseDotBackward(batch, fields_, dim_, x.data, x.ld, g.data + in_, g.ld,
                                    dx->data, dx->ld);
    } else {
      backend_->FmInteractionBackward(batch, fields_, dim_, x.data, x.ld, g.data + in_, g.ld,
                                      dx->data, dx->ld);
    }
  }

 private:
  Backend<T>* backend_;
  bool dot_;
  int in_, fields_, dim_, extra_;
  DeviceArray<T> out_, out_grad_;
};

}  // namespace

template <typename T>
std::unique_ptr<Interaction<T>> MakeFieldInteraction(Backend<T>* backend, InteractionSpec::Kind kind,
                                                     int in, int fields, int dim, int max_batch) {
  return std::make_unique<FieldInteraction<T>>(backend, kind, in, fields, dim, max_batch);
}

template <typename T>
std::unique_ptr<Interaction<T>> MakeInteraction(Backend<T>* backend, DenseParameters<T>* params,
                                                const InteractionSpec& spec, int in, int fields,
                                                int dim, int max_batch) {
  switch (spec.kind) {
    case InteractionSpec::Kind::kNone:
      return nullptr;
    case InteractionSpec::Kind::kDot:
    case InteractionSpec::Kind::kFm:
      return MakeFieldInteraction<T>(backend, spec.kind, in, fields, dim, max_batch);
    case InteractionSpec::Kind::kDcn:
      return MakeCrossNetwork<T>(backend, params, spec, in, max_batch);
  }
  return nullptr;
}

template std::unique_ptr<Interaction<float>> MakeFieldInteraction(Backend<float>*,
                                                                  InteractionSpec::Kind, int, int,
                                                                  int, int);
template std::unique_ptr<Interaction<double>> MakeFieldInteraction(Backend<double>*,
                                                                   InteractionSpec::Kind, int, int,
                                                                   int, int);
template std::unique_ptr<Interaction<float>> MakeInteraction(Backend<float>*,
                                                             DenseParameters<float>*,
                                                             const InteractionSpec&, int, int, int,
                                                             int);
template std::unique_ptr<Interaction<double>> MakeInteraction(Backend<double>*,
                                                              DenseParameters<double>*,
                                                              const InteractionSpec&, int, int,
                                                              int, int);

}  // namespace mtps::models
