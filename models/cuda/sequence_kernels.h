// CUDA launchers of the interaction and sequence ops of Backend<float> (element-wise
// products, layer norm, pairwise dots, FM, packed-sequence gather/scatter, positions, DIN
// features, weighted sums, multi-head self-attention), each on the caller's stream.
//
//   LaunchSelfAttention(args, stream);   // what CudaBackend::SelfAttention runs
//
// Semantics are those of the Backend methods of the same names (models/backend.h).
#pragma once

#include <cuda_runtime.h>

#include "models/backend.h"

namespace mtps::models::cuda {

void LaunchMultiply(int rows, int cols, const float* a, int lda, const float* b, int ldb, float* c,
                    int ldc, bool accumulate, cudaStream_t stream);
void LaunchLayerNorm(int rows, int cols, const float* x, int ldx, const float* gamma,
                     const float* beta, float* y, int ldy, float* xhat, float* rstd,
                     cudaStream_t stream);
void LaunchLayerNormBackward(int rows, int cols, const float* xhat, const float* rstd,
                             const float* gamma, const float* dy, int lddy, float* dx, int lddx,
                             float* dgamma, float* dbeta, cudaStream_t stream);
void LaunchPairwiseDot(int rows, int fields, int dim, const float* x, int ldx, float* out, int ldo,
                       cudaStream_t stream);
void LaunchPairwiseDotBackward(int rows, int fields, int dim, const float* x, int ldx,
                               const float* dout, int lddo, float* dx, int lddx,
                               cudaStream_t stream);
void LaunchFmInteraction(int rows, int fields, int dim, const float* x, int ldx, float* out,
                         int ldo, cudaStream_t stream);
void LaunchFmInteractionBackward(int rows, int fields, int dim, const float* x, int ldx,
                                 const float* dout, int lddo, float* dx, int lddx,
                                 cudaStream_t stream);
void LaunchGatherSequence(const SequenceShape& s, const int32_t* rows, const float* table,
                          float* out, cudaStream_t stream);
void LaunchScatterSequence(const SequenceShape& s, const int32_t* rows, const float* dout,
                           float* table_grad, cudaStream_t stream);
void LaunchAddPositions(const SequenceShape& s, const float* positions, float* x,
                        cudaStream_t stream);
void LaunchAddPositionsBackward(const SequenceShape& s, const float* dx, float* dpositions,
                                cudaStream_t stream);
void LaunchAttentionFeatures(const SequenceShape& s, const float* x, const float* target, int ldt,
                             float* features, cudaStream_t stream);
void LaunchAttentionFeaturesBackward(const SequenceShape& s, const float* x, const float* target,
                                     int ldt, const float* dfeatures, float* dx, float* dtarget,
                                     int lddt, cudaStream_t stream);
void LaunchSequenceWeightedSum(const SequenceShape& s, const float* weights, const float* x,
                               float* out, int ldo, cudaStream_t stream);
void LaunchSequenceWeightedSumBackward(const SequenceShape& s, const float* weights,
                                       const float* x, const float* dout, int lddo,
                                       float* dweights, float* dx, cudaStream_t stream);
void LaunchSequenceSoftmax(const SequenceShape& s, float* scores, cudaStream_t stream);
void LaunchSequenceSoftmaxBackward(const SequenceShape& s, const float* w, float* dw,
                                   cudaStream_t stream);
void LaunchSelfAttention(const AttentionArgs<float>& a, cudaStream_t stream);
void LaunchSelfAttentionBackward(const AttentionArgs<float>& a, const float* dout, float* dqkv,
                                 cudaStream_t stream);

}  // namespace mtps::models::cuda
