// JobSpec: the typed form of the one YAML file that describes a training job, shared by
// every role (scheduler, servers, workers, LocalTrainer), and its validating parser.
//
//   StatusOr<JobSpec> spec = LoadJobSpec("job.yaml");
//   if (!spec.ok()) LOG(FATAL) << spec.status();   // e.g. "tables[1].dim: must be > 0, got -4"
//   const TableSpec* user = spec->FindTable("user");
//
// Every invalid value is refused with the path of the field ("model.experts",
// "tasks[0].loss") and the reason. Unknown keys are refused too, so a typo never passes
// silently. Field documentation lives beside each member below; launch/demo.yaml is a
// complete example.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

namespace mtps {

// Optimizer of a sparse table (applied on the servers) or of the dense parameters.
struct OptimizerSpec {
  enum class Type { kSgd, kAdagrad, kAdam, kAdamW, kFtrl };
  Type type = Type::kAdagrad;
  float lr = 0.01f;
  float l2 = 0.0f;                  // L2 penalty added to the gradient (all types)
  float weight_decay = 0.0f;        // decoupled decay, AdamW only
  float beta1 = 0.9f;               // Adam/AdamW
  float beta2 = 0.999f;             // Adam/AdamW
  float epsilon = 1e-8f;            // Adam/AdamW/Adagrad
  float initial_accumulator = 0.1f; // Adagrad
  float ftrl_alpha = 0.05f;         // FTRL-Proximal learning-rate alpha (lr is unused)
  float ftrl_beta = 1.0f;
  float ftrl_l1 = 0.0f;
  float ftrl_l2 = 0.0f;
};
const char* OptimizerTypeName(OptimizerSpec::Type type);

// How a new row's embedding is drawn; a pure function of (table seed, key, index).
struct InitializerSpec {
  enum class Type { kNormal, kUniform, kZeros };
  Type type = Type::kNormal;
  float stddev = 0.01f;  // kNormal
  float range = 0.01f;   // kUniform: U(-range, range)
};

// How a table stores its embedding weights on the servers. Pulls and pushes carry fp32
// either way: the server converts (round to nearest even) when it stores a row. Optimizer
// state stays fp32 (see ps/row_layout.h for why).
enum class Precision { kFp32, kFp16, kBf16 };
const char* PrecisionName(Precision precision);

struct TableSpec {
  std::string name;
  int dim = 16;
  Precision precision = Precision::kFp32;  // "precision: fp32 | fp16 | bf16"
  OptimizerSpec optimizer;
  InitializerSpec initializer;
  uint64_t seed = 0;             // defaults to a hash of the table name
  uint64_t capacity_rows = 0;    // 0 = unbounded
  uint64_t capacity_bytes = 0;   // 0 = unbounded
  uint32_t admit_min_count = 1;  // 1 = every key is admitted at once
  uint64_t ttl_steps = 0;        // 0 = rows never expire
};

enum class MissingPolicy {
  kDefault,  // sparse: the field's "missing" key (a learned embedding); dense: `default_value`
  kError,    // the record is bad (skipped and counted, or the job stops: data.on_bad_record)
};

// kSequence: an ordered behaviour sequence that InputLayer does not pool; the encoder of
// model.sequence reads it, as its field or a side field (most recent value last, at most
// max_length values).
enum class Pooling { kSum, kMean, kSequence };

struct SparseFieldSpec {
  std::string name;       // feature name; keys are hashed with it, so fields never collide
  std::string column;     // input column; defaults to `name`
  std::string table;      // table that holds this field's embeddings
  bool multi_valued = false;  // CSV cells list values separated by '|'
  Pooling pooling = Pooling::kSum;
  int max_length = 0;  // kSequence: the most recent max_length values are kept (required)
  // Raw values are hashed as this field's (e.g. hist_items as item), so "i17" in the
  // history and "i17" as the target item are one key, one embedding row. Empty: own name.
  std::string key_field;
  MissingPolicy missing = MissingPolicy::kDefault;
};

struct DenseFieldSpec {
  std::string name;
  std::string column;     // defaults to `name`
  float default_value = 0.0f;
  MissingPolicy missing = MissingPolicy::kDefault;
};

struct DataSpec {
  enum class Format { kMtb, kCsv };
  enum class BadRecordPolicy { kSkip, kStop };
  Format format = Format::kMtb;
  std::vector<std::string> train;  // files, directories or glob patterns
  std::vector<std::string> eval;
  std::string oracle;              // optional oracle.json of a generated data set
  BadRecordPolicy on_bad_record = BadRecordPolicy::kStop;
  // Under kSkip: a worker fails when more than this fraction of the records it read were
  // bad, and always when every one was (training on nothing is not a success).
  double max_bad_fraction = 1.0;
  int reader_threads = 1;
  // Every epoch reads this worker's share in a new order: its units (.mtb row groups, CSV
  // chunks) permuted, then records permuted across windows of up to shuffle_window_rows
  // records (held in memory): a share that fits one window is one uniform permutation.
  bool shuffle = true;
  int64_t shuffle_window_rows = int64_t{1} << 20;
  char csv_delimiter = ',';  // "\t" or tab, comma, semicolon; not '|' (multi-value separator) or '"'
};

// model.interaction: a layer between the input matrix X = [field embeddings | dense] and
// the trunk. kDot appends the pairwise dot products of the sparse fields' embeddings
// (DLRM), kFm appends the factorization machine's second-order term as a dim-vector
// 0.5 * ((sum_f v_f)^2 - sum_f v_f^2) (NFM's bi-interaction; its sum is the FM term), both
// need every sparse field at one dim; kDcn replaces X by a DCN-v2 cross network's output
// x_{l+1} = x_0 * (W x_l + b) + x_l, W full-rank or U V with rank low_rank.
struct InteractionSpec {
  enum class Kind { kNone, kDot, kFm, kDcn };
  Kind kind = Kind::kNone;
  int cross_layers = 2;  // dcn
  int low_rank = 0;      // dcn: 0 = full-rank W, r > 0 = W = U V with U [w x r], V [r x w]
};
const char* InteractionKindName(InteractionSpec::Kind kind);

// model.sequence: the encoder of one behaviour-sequence field (pooling: sequence), whose
// output (table dim columns) takes the field's place in X. kDin: target attention, an MLP
// over [h, t, h-t, h*t] scores each history item h against the target item t, and the
// output is sum_j score_j * h_j over the record's items (DIN's unnormalized weights, or
// their softmax over the record with weights_softmax). kBst: learned positions + one
// Transformer encoder block (multi-head self-attention within each record, feed-forward,
// post layer norm), then DIN target attention (bst_pooling: attention) or the mean over
// the items (bst_pooling: mean). kSum / kMean pool the sequence like any multi-valued
// field (the baselines).
struct SequenceSpec {
  enum class Encoder { kDin, kBst, kSum, kMean };
  enum class BstPooling { kAttention, kMean };
  std::string field;   // the sequence field; empty = no sequence encoder
  std::string target;  // the target item's field: same table as `field`
  Encoder encoder = Encoder::kDin;
  std::vector<int> attention_hidden = {36};  // DIN's attention MLP
  int heads = 2;                             // bst: must divide the table's dim
  int ffn_hidden = 64;                       // bst: the feed-forward's hidden units
  BstPooling bst_pooling = BstPooling::kAttention;
  // din: add learned positions (by recency, as BST does) to the items before attention,
  // so the scores can weigh recent items more; the original DIN has none.
  bool din_positions = false;
  // The attention's weights per item: DIN's raw scores (weights_softmax false), or the
  // softmax of the scores over the record's items (true: a weighted mean of the items).
  bool weights_softmax = false;
  // Side sequences aligned with `field`: one value per history item (e.g. the items'
  // categories, as DIN's cate_id sequence beside its goods_id one), each compared with its
  // own target-side field. Each history item is then [item ⊕ side values] and the target
  // [target ⊕ side targets]: attention and the block run on the concatenation, and the
  // output is split back into the fields' columns. Each side field has pooling: sequence
  // and the sequence's max_length; its target is one value from the side field's table.
  struct Side {
    std::string field;
    std::string target;
  };
  std::vector<Side> side;
};
const char* SequenceEncoderName(SequenceSpec::Encoder encoder);

struct ModelSpec {
  enum class Type { kSharedBottom, kMmoe, kPle, kEsmm };
  Type type = Type::kMmoe;
  std::vector<int> bottom_units = {128, 64};  // shared_bottom; also esmm's per-tower MLP
  int experts = 8;                            // mmoe
  std::vector<int> expert_units = {64};       // mmoe, ple
  std::vector<int> tower_units = {32};        // every model: the per-task tower
  int ple_levels = 2;
  int ple_shared_experts = 2;
  int ple_task_experts = 2;
  float dropout = 0.0f;
  InteractionSpec interaction;
  SequenceSpec sequence;
};
const char* ModelTypeName(ModelSpec::Type type);

struct TaskSpec {
  enum class Loss { kBce, kMse };
  std::string name;
  std::string label;  // label column
  Loss loss = Loss::kBce;
  float weight = 1.0f;
};

// training.early_stopping: after each epoch's evaluation, stop once `metric` of `task`
// (a bce task, or "mean" over them) has not improved by more than min_delta for
// `patience` epochs. Either way the run reports its best epoch (see worker/best_epoch.h).
struct EarlyStoppingSpec {
  enum class Metric { kAuc };
  Metric metric = Metric::kAuc;
  std::string task = "mean";
  int patience = 0;  // 0 = never stop early
  double min_delta = 0.0;
};

struct TrainingSpec {
  enum class Mode { kAsync, kSync };
  enum class TaskWeighting { kFixed, kUncertainty };
  int batch_size = 1024;
  int epochs = 1;
  uint64_t seed = 1;
  Mode mode = Mode::kAsync;
  int max_staleness = 4;  // async: steps a worker may run ahead of its acked pushes
  int prefetch = 2;       // batches whose pulls are in flight ahead of compute
  // Async: a worker pulls the dense blocks every this many steps and trains on its copy in
  // between (pushing every step), which cuts the dense pull traffic by that factor. The
  // copy it trains on is then at most prefetch + dense_pull_every - 1 steps old, so 0 (the
  // default) picks the most that stays within max_staleness. Sync mode pulls every step.
  int dense_pull_every = 0;
  // Async: a worker sums its dense gradients over this many steps and pushes the sum once,
  // and pulls the dense blocks every this many steps too (dense_pull_every must then be 0
  // or equal), which cuts the dense push and pull traffic by k. The servers apply a summed
  // push as k steps of the dense optimizer on the mean gradient, so dense_optimizer.lr and
  // the moments keep their per-step meaning: with sgd that is exactly the k steps' updates;
  // with adam or adagrad the k steps see the window's mean instead of each step's own
  // gradient (applied once, adam would take one step per k and learn k times slower;
  // see the issue-9 dense note for AUC at k = 1, 4, 16). A gradient
  // is pushed at most k - 1 steps late and each pull follows the push before it, so the
  // copy a step trains on lacks at most prefetch + k - 1 of this worker's steps: that must
  // be <= max_staleness. A checkpoint cut and the end of every epoch push the partial sum
  // first. Sync mode must keep 1 (every step is applied by all workers together).
  int dense_sync_every = 1;
  TaskWeighting task_weighting = TaskWeighting::kFixed;
  OptimizerSpec dense_optimizer = {.type = OptimizerSpec::Type::kAdam, .lr = 0.001f};
  int eval_batch_size = 4096;
  // A push holding a gradient element beyond this magnitude is refused whole: squares of
  // such values stay far from float's range, so optimizer state (Adagrad, Adam, FTRL
  // accumulators) stays finite, and a wild worker cannot freeze rows.
  float max_gradient_abs = 1e6f;
  EarlyStoppingSpec early_stopping;
};

// The most steps one summed dense push may hold (servers refuse more).
inline constexpr int kMaxDenseSyncEvery = 4096;

struct CheckpointSpec {
  std::string dir;            // empty = no checkpoints
  uint64_t interval_steps = 0;  // 0 = only at the end of the job
  // Also every this many seconds of training (whichever of the two comes first); 0 = off.
  double interval_seconds = 0;
  int keep = 2;               // whole checkpoints kept on disk
  // Every full_every-th checkpoint of a server is full; the ones between are incremental:
  // a table file holds only the rows changed (and the keys removed) since that server's
  // previous checkpoint, and a restore applies the full file, then the increments in order.
  // Dense blocks are written whole every time. 1 (default) = every checkpoint full; at
  // most kMaxCheckpointFullEvery, which bounds a restore's chain. Retention keeps the full
  // checkpoint and every increment that a kept checkpoint needs.
  int full_every = 1;
};
inline constexpr int kMaxCheckpointFullEvery = 1000;

struct JobSpec {
  std::string name = "mtps";
  DataSpec data;
  std::vector<SparseFieldSpec> sparse_fields;
  std::vector<DenseFieldSpec> dense_fields;
  std::vector<TableSpec> tables;
  ModelSpec model;
  std::vector<TaskSpec> tasks;
  TrainingSpec training;
  CheckpointSpec checkpoint;

  // 64-bit hash of the canonical form of the spec: equal for every node that read the
  // same job, whatever the file's comments and layout.
  uint64_t hash = 0;

  const TableSpec* FindTable(const std::string& name) const;
  int TableIndex(const std::string& name) const;  // -1 when absent
};

// model.sequence and model.interaction against the features they read (the sequence and
// target fields exist and share a table, heads divide the dim, dot/fm fields share a dim).
// ParseJobSpec runs it; models run it again on specs built in code.
Status CheckModelInputs(const JobSpec& spec);

// Parses and validates YAML text. `origin` names the source in error messages.
StatusOr<JobSpec> ParseJobSpec(const std::string& yaml_text, const std::string& origin = "job spec");
StatusOr<JobSpec> LoadJobSpec(const std::string& path);

}  // namespace mtps
