// Parsing and validation of the YAML job spec into JobSpec. Every error names the field
// path ("tables[1].optimizer.lr") and the reason; unknown keys are errors too.
#include "protocol/job_spec.h"

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <type_traits>

namespace mtps {
namespace {

// A mapping node being read: remembers its path and which keys were consumed, so that
// Finish() can refuse the keys nobody asked for (typos).
class MapReader {
 public:
  MapReader(const YAML::Node& node, std::string path) : node_(node), path_(std::move(path)) {}

  std::string Path(const std::string& key) const {
    return path_.empty() ? key : path_ + "." + key;
  }
  bool Has(const std::string& key) const { return node_[key].IsDefined() && !node_[key].IsNull(); }
  YAML::Node Node(const std::string& key) {
    used_.insert(key);
    return node_[key];
  }

  // Reads an optional scalar into `out` (left unchanged when absent).
  template <typename T>
  Status Optional(const std::string& key, T* out) {
    used_.insert(key);
    if (!Has(key)) return Status::OK();
    return Scalar(node_[key], Path(key), out);
  }
  template <typename T>
  Status Required(const std::string& key, T* out) {
    used_.insert(key);
    if (!Has(key)) return InvalidArgument(Path(key) + ": required field is missing");
    return Scalar(node_[key], Path(key), out);
  }
  // An optional enum given by name.
  template <typename E>
  Status OptionalEnum(const std::string& key, const std::map<std::string, E>& names, E* out) {
    std::string value;
    MTPS_RETURN_IF_ERROR(Optional(key, &value));
    if (!Has(key)) return Status::OK();
    auto it = names.find(value);
    if (it == names.end()) {
      std::string known;
      for (const auto& [name, unused] : names) known += (known.empty() ? "" : ", ") + name;
      return InvalidArgument(Path(key) + ": unknown value '" + value + "' (expected one of: " +
                             known + ")");
    }
    *out = it->second;
    return Status::OK();
  }

  Status Finish() const {
    for (const auto& entry : node_) {
      // YAML lets a key be a sequence or a mapping (`? - a`); a spec's keys are names.
      if (!entry.first.IsScalar()) {
        return InvalidArgument((path_.empty() ? std::string("the top level") : path_) +
                               ": a key must be a plain name, not a sequence or mapping");
      }
      const std::string key = entry.first.Scalar();
      if (!used_.count(key)) return InvalidArgument(Path(key) + ": unknown field");
    }
    return Status::OK();
  }

  template <typename T>
  static Status Scalar(const YAML::Node& node, const std::string& path, T* out) {
    if (!node.IsScalar()) return InvalidArgument(path + ": expected a scalar value");
    const std::string text = node.Scalar();
    if constexpr (std::is_same_v<T, std::string>) {
      *out = text;
      return Status::OK();
    } else if constexpr (std::is_same_v<T, bool>) {
      if (!YAML::convert<bool>::decode(node, *out)) {
        return InvalidArgument(path + ": expected true or false, got '" + text + "'");
      }
      return Status::OK();
    } else if constexpr (std::is_floating_point_v<T>) {
      double value = 0;
      if (!YAML::convert<double>::decode(node, value) || !std::isfinite(value)) {
        return InvalidArgument(path + ": expected a finite number, got '" + text + "'");
      }
      *out = static_cast<T>(value);
      return Status::OK();
    } else {
      static_assert(std::is_integral_v<T>);
      long long value = 0;
      if (!YAML::convert<long long>::decode(node, value)) {
        return InvalidArgument(path + ": expected an integer, got '" + text + "'");
      }
      if (std::is_unsigned_v<T> && value < 0) {
        return InvalidArgument(path + ": must be >= 0, got " + text);
      }
      const bool too_big = static_cast<unsigned long long>(value) >
                               static_cast<unsigned long long>(std::numeric_limits<T>::max()) &&
                           value > 0;
      const bool too_small = std::is_signed_v<T> &&
                             value < static_cast<long long>(std::numeric_limits<T>::min());
      if (too_big || too_small) {
        return InvalidArgument(path + ": out of range, got " + text);
      }
      *out = static_cast<T>(value);
      return Status::OK();
    }
  }

 private:
  YAML::Node node_;
  std::string path_;
  std::set<std::string> used_;
};

Status ExpectMap(const YAML::Node& node, const std::string& path) {
  if (!node.IsMap()) return InvalidArgument(path + ": expected a mapping");
  return Status::OK();
}

// Calls `each(element, element_path)` for every element of an optional sequence.
Status ForEach(const YAML::Node& node, const std::string& path,
               const std::function<Status(const YAML::Node&, const std::string&)>& each) {
  if (!node.IsDefined() || node.IsNull()) return Status::OK();
  if (!node.IsSequence()) return InvalidArgument(path + ": expected a list");
  for (size_t i = 0; i < node.size(); ++i) {
    MTPS_RETURN_IF_ERROR(each(node[i], path + "[" + std::to_string(i) + "]"));
  }
  return Status::OK();
}

Status ReadStringList(const YAML::Node& node, const std::string& path, std::vector<std::string>* out) {
  if (node.IsDefined() && node.IsScalar()) {  // a single path is a list of one
    out->assign(1, node.Scalar());
    return Status::OK();
  }
  out->clear();
  return ForEach(node, path, [&](const YAML::Node& n, const std::string& p) {
    std::string value;
    MTPS_RETURN_IF_ERROR(MapReader::Scalar(n, p, &value));
    out->push_back(value);
    return Status::OK();
  });
}

Status ReadIntList(const YAML::Node& node, const std::string& path, std::vector<int>* out) {
  if (!node.IsDefined() || node.IsNull()) return Status::OK();
  out->clear();
  return ForEach(node, path, [&](const YAML::Node& n, const std::string& p) {
    int value = 0;
    MTPS_RETURN_IF_ERROR(MapReader::Scalar(n, p, &value));
    if (value <= 0) return InvalidArgument(p + ": must be > 0, got " + std::to_string(value));
    out->push_back(value);
    return Status::OK();
  });
}

Status Positive(const std::string& path, double value) {
  if (!(value > 0)) {
    std::ostringstream s;
    s << path << ": must be > 0, got " << value;
    return InvalidArgument(s.str());
  }
  return Status::OK();
}

Status NonNegative(const std::string& path, double value) {
  if (value < 0) {
    std::ostringstream s;
    s << path << ": must be >= 0, got " << value;
    return InvalidArgument(s.str());
  }
  return Status::OK();
}

const std::map<std::string, OptimizerSpec::Type> kOptimizerNames = {
    {"sgd", OptimizerSpec::Type::kSgd},   {"adagrad", OptimizerSpec::Type::kAdagrad},
    {"adam", OptimizerSpec::Type::kAdam}, {"adamw", OptimizerSpec::Type::kAdamW},
    {"ftrl", OptimizerSpec::Type::kFtrl}};

Status ParseOptimizer(const YAML::Node& node, const std::string& path, OptimizerSpec* out) {
  if (!node.IsDefined() || node.IsNull()) return Status::OK();
  MTPS_RETURN_IF_ERROR(ExpectMap(node, path));
  MapReader r(node, path);
  MTPS_RETURN_IF_ERROR(r.OptionalEnum("type", kOptimizerNames, &out->type));
  MTPS_RETURN_IF_ERROR(r.Optional("lr", &out->lr));
  MTPS_RETURN_IF_ERROR(r.Optional("l2", &out->l2));
  MTPS_RETURN_IF_ERROR(r.Optional("weight_decay", &out->weight_decay));
  MTPS_RETURN_IF_ERROR(r.Optional("beta1", &out->beta1));
  MTPS_RETURN_IF_ERROR(r.Optional("beta2", &out->beta2));
  MTPS_RETURN_IF_ERROR(r.Optional("epsilon", &out->epsilon));
  MTPS_RETURN_IF_ERROR(r.Optional("initial_accumulator", &out->initial_accumulator));
  MTPS_RETURN_IF_ERROR(r.Optional("alpha", &out->ftrl_alpha));
  MTPS_RETURN_IF_ERROR(r.Optional("beta", &out->ftrl_beta));
  MTPS_RETURN_IF_ERROR(r.Optional("l1", &out->ftrl_l1));
  MTPS_RETURN_IF_ERROR(r.Optional("ftrl_l2", &out->ftrl_l2));
  MTPS_RETURN_IF_ERROR(r.Finish());

  MTPS_RETURN_IF_ERROR(Positive(r.Path("lr"), out->lr));
  MTPS_RETURN_IF_ERROR(NonNegative(r.Path("l2"), out->l2));
  MTPS_RETURN_IF_ERROR(NonNegative(r.Path("weight_decay"), out->weight_decay));
  if (out->beta1 < 0 || out->beta1 >= 1) {
    return InvalidArgument(r.Path("beta1") + ": must be in [0, 1), got " + std::to_string(out->beta1));
  }
  if (out->beta2 < 0 || out->beta2 >= 1) {
    return InvalidArgument(r.Path("beta2") + ": must be in [0, 1), got " + std::to_string(out->beta2));
  }
  MTPS_RETURN_IF_ERROR(Positive(r.Path("epsilon"), out->epsilon));
  MTPS_RETURN_IF_ERROR(NonNegative(r.Path("initial_accumulator"), out->initial_accumulator));
  MTPS_RETURN_IF_ERROR(Positive(r.Path("alpha"), out->ftrl_alpha));
  MTPS_RETURN_IF_ERROR(NonNegative(r.Path("beta"), out->ftrl_beta));
  MTPS_RETURN_IF_ERROR(NonNegative(r.Path("l1"), out->ftrl_l1));
  return NonNegative(r.Path("ftrl_l2"), out->ftrl_l2);
}

Status ParseInitializer(const YAML::Node& node, const std::string& path, InitializerSpec* out) {
  if (!node.IsDefined() || node.IsNull()) return Status::OK();
  MTPS_RETURN_IF_ERROR(ExpectMap(node, path));
  MapReader r(node, path);
  MTPS_RETURN_IF_ERROR(r.OptionalEnum(
      "type",
      std::map<std::string, InitializerSpec::Type>{{"normal", InitializerSpec::Type::kNormal},
                                                   {"uniform", InitializerSpec::Type::kUniform},
                                                   {"zeros", InitializerSpec::Type::kZeros}},
      &out->type));
  MTPS_RETURN_IF_ERROR(r.Optional("stddev", &out->stddev));
  MTPS_RETURN_IF_ERROR(r.Optional("range", &out->range));
  MTPS_RETURN_IF_ERROR(r.Finish());
  MTPS_RETURN_IF_ERROR(NonNegative(r.Path("stddev"), out->stddev));
  return NonNegative(r.Path("range"), out->range);
}

uint64_t Fnv1a64(const std::string& text) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

Status ParseTable(const YAML::Node& node, const std::string& path, TableSpec* t) {
  MTPS_RETURN_IF_ERROR(ExpectMap(node, path));
  MapReader r(node, path);
  MTPS_RETURN_IF_ERROR(r.Required("name", &t->name));
  MTPS_RETURN_IF_ERROR(r.Required("dim", &t->dim));
  MTPS_RETURN_IF_ERROR(r.OptionalEnum(
      "precision",
      std::map<std::string, Precision>{
          {"fp32", Precision::kFp32}, {"fp16", Precision::kFp16}, {"bf16", Precision::kBf16}},
      &t->precision));
  MTPS_RETURN_IF_ERROR(ParseOptimizer(r.Node("optimizer"), r.Path("optimizer"), &t->optimizer));
  MTPS_RETURN_IF_ERROR(ParseInitializer(r.Node("init"), r.Path("init"), &t->initializer));
  t->seed = Fnv1a64(t->name);
  MTPS_RETURN_IF_ERROR(r.Optional("seed", &t->seed));
  MTPS_RETURN_IF_ERROR(r.Optional("capacity_rows", &t->capacity_rows));
  MTPS_RETURN_IF_ERROR(r.Optional("capacity_bytes", &t->capacity_bytes));
  MTPS_RETURN_IF_ERROR(r.Optional("admit_min_count", &t->admit_min_count));
  MTPS_RETURN_IF_ERROR(r.Optional("ttl_steps", &t->ttl_steps));
  MTPS_RETURN_IF_ERROR(r.Finish());
  if (t->name.empty()) return InvalidArgument(r.Path("name") + ": must not be empty");
  if (t->dim <= 0 || t->dim > 4096) {
    return InvalidArgument(r.Path("dim") + ": must be in [1, 4096], got " + std::to_string(t->dim));
  }
  if (t->admit_min_count < 1) {
    return InvalidArgument(r.Path("admit_min_count") + ": must be >= 1, got 0");
  }
  return Status::OK();
}

const std::map<std::string, MissingPolicy> kMissingNames = {{"default", MissingPolicy::kDefault},
                                                            {"error", MissingPolicy::kError}};

Status ParseSparseField(const YAML::Node& node, const std::string& path, SparseFieldSpec* f) {
  MTPS_RETURN_IF_ERROR(ExpectMap(node, path));
  MapReader r(node, path);
  MTPS_RETURN_IF_ERROR(r.Required("name", &f->name));
  MTPS_RETURN_IF_ERROR(r.Required("table", &f->table));
  f->column = f->name;
  MTPS_RETURN_IF_ERROR(r.Optional("column", &f->column));
  MTPS_RETURN_IF_ERROR(r.Optional("multi_valued", &f->multi_valued));
  MTPS_RETURN_IF_ERROR(r.OptionalEnum(
      "pooling",
      std::map<std::string, Pooling>{
          {"sum", Pooling::kSum}, {"mean", Pooling::kMean}, {"sequence", Pooling::kSequence}},
      &f->pooling));
  MTPS_RETURN_IF_ERROR(r.Optional("max_length", &f->max_length));
  MTPS_RETURN_IF_ERROR(r.Optional("key_field", &f->key_field));
  MTPS_RETURN_IF_ERROR(r.OptionalEnum("missing", kMissingNames, &f->missing));
  MTPS_RETURN_IF_ERROR(r.Finish());
  if (f->name.empty()) return InvalidArgument(r.Path("name") + ": must not be empty");
  if (f->pooling == Pooling::kSequence && f->max_length <= 0) {
    return InvalidArgument(r.Path("max_length") +
                           ": pooling sequence needs max_length > 0, got " +
                           std::to_string(f->max_length));
  }
  return Status::OK();
}

Status ParseDenseField(const YAML::Node& node, const std::string& path, DenseFieldSpec* f) {
  if (node.IsScalar()) {  // "- price" is short for {name: price}
    f->name = f->column = node.Scalar();
    return Status::OK();
  }
  MTPS_RETURN_IF_ERROR(ExpectMap(node, path));
  MapReader r(node, path);
  MTPS_RETURN_IF_ERROR(r.Required("name", &f->name));
  f->column = f->name;
  MTPS_RETURN_IF_ERROR(r.Optional("column", &f->column));
  MTPS_RETURN_IF_ERROR(r.Optional("default", &f->default_value));
  MTPS_RETURN_IF_ERROR(r.OptionalEnum("missing", kMissingNames, &f->missing));
  MTPS_RETURN_IF_ERROR(r.Finish());
  if (f->name.empty()) return InvalidArgument(r.Path("name") + ": must not be empty");
  return Status::OK();
}

// One character ("\t" in double quotes is a tab) or its name; never '|', which separates
// multi-valued cells, nor a quote or a line end, which RFC 4180 reserves.
Status ParseCsvDelimiter(MapReader& r, char* out) {
  std::string text;
  MTPS_RETURN_IF_ERROR(r.Optional("csv_delimiter", &text));
  if (!r.Has("csv_delimiter")) return Status::OK();
  static const std::map<std::string, char> kNames = {
      {"tab", '\t'}, {"comma", ','}, {"semicolon", ';'}, {"space", ' '}};
  if (auto it = kNames.find(text); it != kNames.end()) {
    *out = it->second;
  } else if (text.size() == 1) {
    *out = text[0];
  } else {
    return InvalidArgument(r.Path("csv_delimiter") + ": expected one character (\"\\t\" for a tab) or " +
                           "tab, comma, semicolon, space; got '" + text + "'");
  }
  if (*out == '|' || *out == '"' || *out == '\n' || *out == '\r') {
    return InvalidArgument(r.Path("csv_delimiter") + ": '" + text +
                           "' cannot separate columns (it separates multi-valued cells, quotes or ends lines)");
  }
  return Status::OK();
}

Status ParseData(const YAML::Node& node, const std::string& path, DataSpec* d) {
  if (!node.IsDefined() || node.IsNull()) return Status::OK();
  MTPS_RETURN_IF_ERROR(ExpectMap(node, path));
  MapReader r(node, path);
  MTPS_RETURN_IF_ERROR(r.OptionalEnum(
      "format",
      std::map<std::string, DataSpec::Format>{{"mtb", DataSpec::Format::kMtb},
                                              {"csv", DataSpec::Format::kCsv}},
      &d->format));
  MTPS_RETURN_IF_ERROR(ReadStringList(r.Node("train"), r.Path("train"), &d->train));
  MTPS_RETURN_IF_ERROR(ReadStringList(r.Node("eval"), r.Path("eval"), &d->eval));
  MTPS_RETURN_IF_ERROR(r.Optional("oracle", &d->oracle));
  MTPS_RETURN_IF_ERROR(r.OptionalEnum(
      "on_bad_record",
      std::map<std::string, DataSpec::BadRecordPolicy>{{"skip", DataSpec::BadRecordPolicy::kSkip},
                                                       {"stop", DataSpec::BadRecordPolicy::kStop}},
      &d->on_bad_record));
  MTPS_RETURN_IF_ERROR(r.Optional("reader_threads", &d->reader_threads));
  MTPS_RETURN_IF_ERROR(r.Optional("shuffle", &d->shuffle));
  MTPS_RETURN_IF_ERROR(r.Optional("shuffle_window_rows", &d->shuffle_window_rows));
  MTPS_RETURN_IF_ERROR(ParseCsvDelimiter(r, &d->csv_delimiter));
  MTPS_RETURN_IF_ERROR(r.Optional("max_bad_fraction", &d->max_bad_fraction));
  MTPS_RETURN_IF_ERROR(r.Finish());
  MTPS_RETURN_IF_ERROR(Positive(r.Path("shuffle_window_rows"), d->shuffle_window_rows));
  if (!(d->max_bad_fraction >= 0 && d->max_bad_fraction <= 1)) {
    return InvalidArgument(r.Path("max_bad_fraction") + ": must be in [0, 1], got " +
                           std::to_string(d->max_bad_fraction));
  }
  return Positive(r.Path("reader_threads"), d->reader_threads);
}

Status ParseInteraction(const YAML::Node& node, const std::string& path, InteractionSpec* i) {
  if (!node.IsDefined() || node.IsNull()) return Status::OK();
  MTPS_RETURN_IF_ERROR(ExpectMap(node, path));
  MapReader r(node, path);
  MTPS_RETURN_IF_ERROR(r.OptionalEnum(
      "kind",
      std::map<std::string, InteractionSpec::Kind>{{"none", InteractionSpec::Kind::kNone},
                                                   {"dot", InteractionSpec::Kind::kDot},
                                                   {"fm", InteractionSpec::Kind::kFm},
                                                   {"dcn", InteractionSpec::Kind::kDcn}},
      &i->kind));
  MTPS_RETURN_IF_ERROR(r.Optional("cross_layers", &i->cross_layers));
  MTPS_RETURN_IF_ERROR(r.Optional("low_rank", &i->low_rank));
  MTPS_RETURN_IF_ERROR(r.Finish());
  MTPS_RETURN_IF_ERROR(Positive(r.Path("cross_layers"), i->cross_layers));
  return NonNegative(r.Path("low_rank"), i->low_rank);
}

Status ParseSequence(const YAML::Node& node, const std::string& path, SequenceSpec* s) {
  if (!node.IsDefined() || node.IsNull()) return Status::OK();
  MTPS_RETURN_IF_ERROR(ExpectMap(node, path));
  MapReader r(node, path);
  MTPS_RETURN_IF_ERROR(r.Required("field", &s->field));
  MTPS_RETURN_IF_ERROR(r.Required("target", &s->target));
  MTPS_RETURN_IF_ERROR(r.OptionalEnum(
      "encoder",
      std::map<std::string, SequenceSpec::Encoder>{{"din", SequenceSpec::Encoder::kDin},
                                                   {"bst", SequenceSpec::Encoder::kBst},
                                                   {"sum", SequenceSpec::Encoder::kSum},
                                                   {"mean", SequenceSpec::Encoder::kMean}},
      &s->encoder));
  MTPS_RETURN_IF_ERROR(ReadIntList(r.Node("attention_hidden"), r.Path("attention_hidden"),
                                   &s->attention_hidden));
  MTPS_RETURN_IF_ERROR(r.Optional("heads", &s->heads));
  MTPS_RETURN_IF_ERROR(r.Optional("ffn_hidden", &s->ffn_hidden));
  MTPS_RETURN_IF_ERROR(r.OptionalEnum(
      "bst_pooling",
      std::map<std::string, SequenceSpec::BstPooling>{
          {"attention", SequenceSpec::BstPooling::kAttention},
          {"mean", SequenceSpec::BstPooling::kMean}},
      &s->bst_pooling));
  MTPS_RETURN_IF_ERROR(r.Optional("din_positions", &s->din_positions));
  MTPS_RETURN_IF_ERROR(r.Optional("weights_softmax", &s->weights_softmax));
  s->side.clear();
  MTPS_RETURN_IF_ERROR(ForEach(r.Node("side"), r.Path("side"),
                               [&](const YAML::Node& n, const std::string& p) {
                                 MTPS_RETURN_IF_ERROR(ExpectMap(n, p));
                                 MapReader sr(n, p);
                                 SequenceSpec::Side side;
                                 MTPS_RETURN_IF_ERROR(sr.Required("field", &side.field));
                                 MTPS_RETURN_IF_ERROR(sr.Required("target", &side.target));
                                 MTPS_RETURN_IF_ERROR(sr.Finish());
                                 s->side.push_back(std::move(side));
                                 return Status::OK();
                               }));
  MTPS_RETURN_IF_ERROR(r.Finish());
  for (size_t i = 0; i < s->attention_hidden.size(); ++i) {
    MTPS_RETURN_IF_ERROR(
        Positive(r.Path("attention_hidden") + "[" + std::to_string(i) + "]",
                 s->attention_hidden[i]));
  }
  MTPS_RETURN_IF_ERROR(Positive(r.Path("heads"), s->heads));
  return Positive(r.Path("ffn_hidden"), s->ffn_hidden);
}

Status ParseModel(const YAML::Node& node, const std::string& path, ModelSpec* m) {
  MTPS_RETURN_IF_ERROR(ExpectMap(node, path));
  MapReader r(node, path);
  if (!r.Has("type")) return InvalidArgument(r.Path("type") + ": required field is missing");
  MTPS_RETURN_IF_ERROR(r.OptionalEnum(
      "type",
      std::map<std::string, ModelSpec::Type>{{"shared_bottom", ModelSpec::Type::kSharedBottom},
                                             {"mmoe", ModelSpec::Type::kMmoe},
                                             {"ple", ModelSpec::Type::kPle},
                                             {"esmm", ModelSpec::Type::kEsmm}},
      &m->type));
  MTPS_RETURN_IF_ERROR(ReadIntList(r.Node("bottom_units"), r.Path("bottom_units"), &m->bottom_units));
  MTPS_RETURN_IF_ERROR(r.Optional("experts", &m->experts));
  MTPS_RETURN_IF_ERROR(ReadIntList(r.Node("expert_units"), r.Path("expert_units"), &m->expert_units));
  MTPS_RETURN_IF_ERROR(ReadIntList(r.Node("tower_units"), r.Path("tower_units"), &m->tower_units));
  MTPS_RETURN_IF_ERROR(r.Optional("ple_levels", &m->ple_levels));
  MTPS_RETURN_IF_ERROR(r.Optional("ple_shared_experts", &m->ple_shared_experts));
  MTPS_RETURN_IF_ERROR(r.Optional("ple_task_experts", &m->ple_task_experts));
  MTPS_RETURN_IF_ERROR(r.Optional("dropout", &m->dropout));
  MTPS_RETURN_IF_ERROR(ParseInteraction(r.Node("interaction"), r.Path("interaction"),
                                        &m->interaction));
  MTPS_RETURN_IF_ERROR(ParseSequence(r.Node("sequence"), r.Path("sequence"), &m->sequence));
  MTPS_RETURN_IF_ERROR(r.Finish());
  MTPS_RETURN_IF_ERROR(Positive(r.Path("experts"), m->experts));
  MTPS_RETURN_IF_ERROR(Positive(r.Path("ple_levels"), m->ple_levels));
  MTPS_RETURN_IF_ERROR(NonNegative(r.Path("ple_shared_experts"), m->ple_shared_experts));
  MTPS_RETURN_IF_ERROR(NonNegative(r.Path("ple_task_experts"), m->ple_task_experts));
  if (m->ple_shared_experts + m->ple_task_experts == 0) {
    return InvalidArgument(r.Path("ple_shared_experts") + ": a PLE level needs at least one expert");
  }
  if (m->dropout < 0 || m->dropout >= 1) {
    return InvalidArgument(r.Path("dropout") + ": must be in [0, 1), got " + std::to_string(m->dropout));
  }
  return Status::OK();
}

Status ParseTask(const YAML::Node& node, const std::string& path, TaskSpec* t) {
  MTPS_RETURN_IF_ERROR(ExpectMap(node, path));
  MapReader r(node, path);
  MTPS_RETURN_IF_ERROR(r.Required("name", &t->name));
  t->label = t->name;
  MTPS_RETURN_IF_ERROR(r.Optional("label", &t->label));
  MTPS_RETURN_IF_ERROR(r.OptionalEnum(
      "loss",
      std::map<std::string, TaskSpec::Loss>{{"bce", TaskSpec::Loss::kBce},
                                            {"mse", TaskSpec::Loss::kMse}},
      &t->loss));
  MTPS_RETURN_IF_ERROR(r.Optional("weight", &t->weight));
  MTPS_RETURN_IF_ERROR(r.Finish());
  if (t->name.empty()) return InvalidArgument(r.Path("name") + ": must not be empty");
  return NonNegative(r.Path("weight"), t->weight);
}

Status ParseEarlyStopping(const YAML::Node& node, const std::string& path, EarlyStoppingSpec* e) {
  if (!node.IsDefined() || node.IsNull()) return Status::OK();
  MTPS_RETURN_IF_ERROR(ExpectMap(node, path));
  MapReader r(node, path);
  MTPS_RETURN_IF_ERROR(r.OptionalEnum(
      "metric", std::map<std::string, EarlyStoppingSpec::Metric>{{"auc", EarlyStoppingSpec::Metric::kAuc}},
      &e->metric));
  MTPS_RETURN_IF_ERROR(r.Optional("task", &e->task));
  MTPS_RETURN_IF_ERROR(r.Required("patience", &e->patience));
  MTPS_RETURN_IF_ERROR(r.Optional("min_delta", &e->min_delta));
  MTPS_RETURN_IF_ERROR(r.Finish());
  MTPS_RETURN_IF_ERROR(Positive(r.Path("patience"), e->patience));
  if (!(e->min_delta >= 0)) {
    return InvalidArgument(r.Path("min_delta") + ": must be >= 0, got " + std::to_string(e->min_delta));
  }
  return Status::OK();
}

// training.dense_sync_every: k steps of dense gradients summed and pushed once, the dense
// blocks pulled every k steps, within the staleness bound (see TrainingSpec).
Status CheckDenseSync(const TrainingSpec& t, const std::string& path) {
  const int k = t.dense_sync_every;
  if (k < 1 || k > kMaxDenseSyncEvery) {
    return InvalidArgument(path + ": must be in [1, " + std::to_string(kMaxDenseSyncEvery) +
                           "] (1 = push every step), got " + std::to_string(k));
  }
  if (k == 1) return Status::OK();
  if (t.mode == TrainingSpec::Mode::kSync) {
    return InvalidArgument(path + ": must be 1 in sync mode (all workers apply every step together), got " +
                           std::to_string(k));
  }
  if (t.dense_pull_every != 0 && t.dense_pull_every != k) {
    return InvalidArgument(path + ": " + std::to_string(k) + " also sets the dense pull cadence; " +
                           "training.dense_pull_every must be 0 or " + std::to_string(k) + ", got " +
                           std::to_string(t.dense_pull_every));
  }
  if (t.prefetch + k - 1 > t.max_staleness) {
    return InvalidArgument(path + ": " + std::to_string(k) + " with prefetch " + std::to_string(t.prefetch) +
                           " lets a worker train on dense values " + std::to_string(t.prefetch + k - 1) +
                           " of its own steps old, past training.max_staleness " +
                           std::to_string(t.max_staleness) + "; raise max_staleness to at least " +
                           std::to_string(t.prefetch + k - 1) + " or lower dense_sync_every");
  }
  return Status::OK();
}

Status ParseTraining(const YAML::Node& node, const std::string& path, TrainingSpec* t) {
  if (!node.IsDefined() || node.IsNull()) return Status::OK();
  MTPS_RETURN_IF_ERROR(ExpectMap(node, path));
  MapReader r(node, path);
  MTPS_RETURN_IF_ERROR(r.Optional("batch_size", &t->batch_size));
  MTPS_RETURN_IF_ERROR(r.Optional("epochs", &t->epochs));
  MTPS_RETURN_IF_ERROR(r.Optional("seed", &t->seed));
  MTPS_RETURN_IF_ERROR(r.OptionalEnum(
      "mode",
      std::map<std::string, TrainingSpec::Mode>{{"async", TrainingSpec::Mode::kAsync},
                                                {"sync", TrainingSpec::Mode::kSync}},
      &t->mode));
  MTPS_RETURN_IF_ERROR(r.Optional("max_staleness", &t->max_staleness));
  MTPS_RETURN_IF_ERROR(r.Optional("prefetch", &t->prefetch));
  MTPS_RETURN_IF_ERROR(r.Optional("dense_pull_every", &t->dense_pull_every));
  MTPS_RETURN_IF_ERROR(r.Optional("dense_sync_every", &t->dense_sync_every));
  MTPS_RETURN_IF_ERROR(r.OptionalEnum(
      "task_weighting",
      std::map<std::string, TrainingSpec::TaskWeighting>{
          {"fixed", TrainingSpec::TaskWeighting::kFixed},
          {"uncertainty", TrainingSpec::TaskWeighting::kUncertainty}},
      &t->task_weighting));
  MTPS_RETURN_IF_ERROR(
      ParseOptimizer(r.Node("dense_optimizer"), r.Path("dense_optimizer"), &t->dense_optimizer));
  MTPS_RETURN_IF_ERROR(r.Optional("eval_batch_size", &t->eval_batch_size));
  MTPS_RETURN_IF_ERROR(r.Optional("max_gradient_abs", &t->max_gradient_abs));
  MTPS_RETURN_IF_ERROR(ParseEarlyStopping(r.Node("early_stopping"), r.Path("early_stopping"),
                                          &t->early_stopping));
  MTPS_RETURN_IF_ERROR(r.Finish());
  MTPS_RETURN_IF_ERROR(Positive(r.Path("batch_size"), t->batch_size));
  MTPS_RETURN_IF_ERROR(Positive(r.Path("epochs"), t->epochs));
  MTPS_RETURN_IF_ERROR(NonNegative(r.Path("max_staleness"), t->max_staleness));
  MTPS_RETURN_IF_ERROR(NonNegative(r.Path("prefetch"), t->prefetch));
  MTPS_RETURN_IF_ERROR(NonNegative(r.Path("dense_pull_every"), t->dense_pull_every));
  MTPS_RETURN_IF_ERROR(CheckDenseSync(*t, r.Path("dense_sync_every")));
  MTPS_RETURN_IF_ERROR(Positive(r.Path("max_gradient_abs"), t->max_gradient_abs));
  return Positive(r.Path("eval_batch_size"), t->eval_batch_size);
}

Status ParseCheckpoint(const YAML::Node& node, const std::string& path, CheckpointSpec* c) {
  if (!node.IsDefined() || node.IsNull()) return Status::OK();
  MTPS_RETURN_IF_ERROR(ExpectMap(node, path));
  MapReader r(node, path);
  MTPS_RETURN_IF_ERROR(r.Optional("dir", &c->dir));
  MTPS_RETURN_IF_ERROR(r.Optional("interval_steps", &c->interval_steps));
  MTPS_RETURN_IF_ERROR(r.Optional("interval_seconds", &c->interval_seconds));
  MTPS_RETURN_IF_ERROR(r.Optional("keep", &c->keep));
  MTPS_RETURN_IF_ERROR(r.Optional("full_every", &c->full_every));
  MTPS_RETURN_IF_ERROR(r.Finish());
  if (c->full_every < 1 || c->full_every > kMaxCheckpointFullEvery) {
    return InvalidArgument(r.Path("full_every") + ": must be in [1, " +
                           std::to_string(kMaxCheckpointFullEvery) +
                           "] (1 = every checkpoint full, N = a full one then N-1 incremental), got " +
                           std::to_string(c->full_every));
  }
  if (!(c->interval_seconds >= 0 && c->interval_seconds < 1e9)) {
    std::ostringstream s;
    s << r.Path("interval_seconds") << ": must be a number of seconds >= 0, got " << c->interval_seconds;
    return InvalidArgument(s.str());
  }
  return Positive(r.Path("keep"), c->keep);
}

// key_field names another sparse feature of the same table (its keys are that feature's);
// a sequence is a multi-valued list.
Status CheckSequenceKeys(const JobSpec& spec) {
  for (size_t i = 0; i < spec.sparse_fields.size(); ++i) {
    const SparseFieldSpec& f = spec.sparse_fields[i];
    const std::string path = "features.sparse[" + std::to_string(i) + "]";
    if (f.pooling == Pooling::kSequence && !f.multi_valued) {
      return InvalidArgument(path + ".multi_valued: pooling sequence reads a '|' list, set multi_valued: true");
    }
    if (f.max_length != 0 && f.pooling != Pooling::kSequence) {
      return InvalidArgument(path + ".max_length: only a field with pooling: sequence is truncated");
    }
    if (f.key_field.empty() || f.key_field == f.name) continue;
    const SparseFieldSpec* key = nullptr;
    for (const SparseFieldSpec& other : spec.sparse_fields) {
      if (other.name == f.key_field) key = &other;
    }
    if (key == nullptr) {
      return InvalidArgument(path + ".key_field: no sparse feature '" + f.key_field + "'");
    }
    if (key->table != f.table) {
      return InvalidArgument(path + ".key_field: '" + f.key_field + "' reads table '" + key->table +
                             "', '" + f.name + "' reads '" + f.table +
                             "' (shared keys only mean shared rows within one table)");
    }
  }
  return Status::OK();
}

Status CheckEarlyStoppingTask(const JobSpec& spec) {
  const EarlyStoppingSpec& e = spec.training.early_stopping;
  if (e.task == "mean") return Status::OK();
  for (const TaskSpec& task : spec.tasks) {
    if (task.name != e.task) continue;
    if (task.loss != TaskSpec::Loss::kBce) {
      return InvalidArgument("training.early_stopping.task: '" + e.task +
                             "' is an mse task; auc needs a bce task");
    }
    return Status::OK();
  }
  return InvalidArgument("training.early_stopping.task: no task '" + e.task + "' (a bce task or mean)");
}

// Checks that hold between sections: names unique, fields point at tables, the model fits
// the tasks.
Status CrossCheck(const JobSpec& spec) {
  std::set<std::string> tables;
  for (size_t i = 0; i < spec.tables.size(); ++i) {
    if (!tables.insert(spec.tables[i].name).second) {
      return InvalidArgument("tables[" + std::to_string(i) + "].name: duplicate table '" +
                             spec.tables[i].name + "'");
    }
  }
  std::set<std::string> features;
  for (size_t i = 0; i < spec.sparse_fields.size(); ++i) {
    const auto& f = spec.sparse_fields[i];
    const std::string path = "features.sparse[" + std::to_string(i) + "]";
    if (!features.insert(f.name).second) {
      return InvalidArgument(path + ".name: duplicate feature '" + f.name + "'");
    }
    if (!tables.count(f.table)) {
      return InvalidArgument(path + ".table: unknown table '" + f.table + "'");
    }
  }
  for (size_t i = 0; i < spec.dense_fields.size(); ++i) {
    if (!features.insert(spec.dense_fields[i].name).second) {
      return InvalidArgument("features.dense[" + std::to_string(i) + "].name: duplicate feature '" +
                             spec.dense_fields[i].name + "'");
    }
  }
  if (spec.sparse_fields.empty() && spec.dense_fields.empty()) {
    return InvalidArgument("features: at least one sparse or dense feature is required");
  }
  if (spec.tasks.empty()) return InvalidArgument("tasks: at least one task is required");
  std::set<std::string> task_names;
  for (size_t i = 0; i < spec.tasks.size(); ++i) {
    if (!task_names.insert(spec.tasks[i].name).second) {
      return InvalidArgument("tasks[" + std::to_string(i) + "].name: duplicate task '" +
                             spec.tasks[i].name + "'");
    }
  }
  MTPS_RETURN_IF_ERROR(CheckSequenceKeys(spec));
  MTPS_RETURN_IF_ERROR(CheckEarlyStoppingTask(spec));
  MTPS_RETURN_IF_ERROR(CheckModelInputs(spec));
  if (spec.model.type == ModelSpec::Type::kEsmm) {
    if (spec.tasks.size() != 2 || spec.tasks[0].loss != TaskSpec::Loss::kBce ||
        spec.tasks[1].loss != TaskSpec::Loss::kBce) {
      return InvalidArgument(
          "tasks: esmm needs exactly two bce tasks, CTR (label click) then CTCVR (label "
          "click and buy)");
    }
  }
  return Status::OK();
}

}  // namespace

const char* OptimizerTypeName(OptimizerSpec::Type type) {
  switch (type) {
    case OptimizerSpec::Type::kSgd: return "sgd";
    case OptimizerSpec::Type::kAdagrad: return "adagrad";
    case OptimizerSpec::Type::kAdam: return "adam";
    case OptimizerSpec::Type::kAdamW: return "adamw";
    case OptimizerSpec::Type::kFtrl: return "ftrl";
  }
  return "unknown";
}

const char* PrecisionName(Precision precision) {
  switch (precision) {
    case Precision::kFp32: return "fp32";
    case Precision::kFp16: return "fp16";
    case Precision::kBf16: return "bf16";
  }
  return "unknown";
}

const char* ModelTypeName(ModelSpec::Type type) {
  switch (type) {
    case ModelSpec::Type::kSharedBottom: return "shared_bottom";
    case ModelSpec::Type::kMmoe: return "mmoe";
    case ModelSpec::Type::kPle: return "ple";
    case ModelSpec::Type::kEsmm: return "esmm";
  }
  return "unknown";
}

// model.sequence.side against the features: each side field an aligned sequence (pooling:
// sequence, the sequence's max_length), each target one value of the side field's table.
// Returns the sum of the side fields' table dims.
namespace {
StatusOr<int> CheckSequenceSide(const JobSpec& spec, const SparseFieldSpec& sequence) {
  const SequenceSpec& seq = spec.model.sequence;
  auto find = [&](const std::string& name) -> const SparseFieldSpec* {
    for (const SparseFieldSpec& f : spec.sparse_fields) {
      if (f.name == name) return &f;
    }
    return nullptr;
  };
  int width = 0;
  for (size_t i = 0; i < seq.side.size(); ++i) {
    const SequenceSpec::Side& side = seq.side[i];
    const std::string path = "model.sequence.side[" + std::to_string(i) + "]";
    const SparseFieldSpec* f = find(side.field);
    if (f == nullptr) return InvalidArgument(path + ".field: no sparse feature '" + side.field + "'");
    if (f->name == seq.field) {
      return InvalidArgument(path + ".field: '" + side.field + "' is the sequence itself");
    }
    for (size_t j = 0; j < i; ++j) {
      if (seq.side[j].field == side.field) {
        return InvalidArgument(path + ".field: '" + side.field + "' is listed twice");
      }
    }
    if (f->pooling != Pooling::kSequence || f->max_length != sequence.max_length) {
      return InvalidArgument(path + ".field: feature '" + side.field +
                             "' must have pooling: sequence and max_length " +
                             std::to_string(sequence.max_length) + " like '" + seq.field +
                             "' (one value per history item)");
    }
    const SparseFieldSpec* t = find(side.target);
    if (t == nullptr) {
      return InvalidArgument(path + ".target: no sparse feature '" + side.target + "'");
    }
    if (t->pooling == Pooling::kSequence) {
      return InvalidArgument(path + ".target: feature '" + side.target +
                             "' is itself a sequence; the target is one value");
    }
    if (t->table != f->table) {
      return InvalidArgument(path + ".target: feature '" + side.target + "' reads table '" +
                             t->table + "', the side sequence '" + side.field + "' reads '" +
                             f->table + "' (a side target must share its sequence's table)");
    }
    if (const TableSpec* table = spec.FindTable(f->table); table != nullptr) width += table->dim;
  }
  return width;
}
}  // namespace

Status CheckModelInputs(const JobSpec& spec) {
  const SequenceSpec& seq = spec.model.sequence;
  int sequence_field = -1, target_field = -1;
  for (size_t i = 0; i < spec.sparse_fields.size(); ++i) {
    if (spec.sparse_fields[i].name == seq.field) sequence_field = static_cast<int>(i);
    if (spec.sparse_fields[i].name == seq.target) target_field = static_cast<int>(i);
  }
  if (!seq.field.empty()) {
    if (sequence_field < 0) {
      return InvalidArgument("model.sequence.field: no sparse feature '" + seq.field + "'");
    }
    const SparseFieldSpec& f = spec.sparse_fields[sequence_field];
    if (f.pooling != Pooling::kSequence) {
      return InvalidArgument("model.sequence.field: feature '" + seq.field +
                             "' must have pooling: sequence");
    }
    if (target_field < 0) {
      return InvalidArgument("model.sequence.target: no sparse feature '" + seq.target + "'");
    }
    const SparseFieldSpec& t = spec.sparse_fields[target_field];
    if (t.pooling == Pooling::kSequence) {
      return InvalidArgument("model.sequence.target: feature '" + seq.target +
                             "' is itself a sequence; the target is one item");
    }
    if (t.table != f.table) {
      return InvalidArgument("model.sequence.target: feature '" + seq.target + "' reads table '" +
                             t.table + "', the sequence '" + seq.field + "' reads '" + f.table +
                             "' (the target must share the sequence's table)");
    }
    const TableSpec* table = spec.FindTable(f.table);
    int width = table != nullptr ? table->dim : 0;
    MTPS_ASSIGN_OR_RETURN(const int side_width, CheckSequenceSide(spec, f));
    width += side_width;
    if (seq.encoder == SequenceSpec::Encoder::kBst && table != nullptr && width % seq.heads != 0) {
      return InvalidArgument("model.sequence.heads: " + std::to_string(seq.heads) +
                             " heads do not divide table '" + f.table + "' dim " +
                             (seq.side.empty() ? std::to_string(width)
                                               : std::to_string(table->dim) + " + the side " +
                                                     "fields' dims = " + std::to_string(width)));
    }
  } else if (!seq.side.empty()) {
    return InvalidArgument("model.sequence.side: side sequences need model.sequence.field");
  }
  auto is_side = [&](const std::string& name) {
    for (const SequenceSpec::Side& side : seq.side) {
      if (side.field == name) return true;
    }
    return false;
  };
  for (size_t i = 0; i < spec.sparse_fields.size(); ++i) {
    const SparseFieldSpec& f = spec.sparse_fields[i];
    if (f.pooling == Pooling::kSequence && f.name != seq.field && !is_side(f.name)) {
      return InvalidArgument("features.sparse[" + std::to_string(i) + "].pooling: field '" +
                             f.name + "' is a sequence, but model.sequence.field " +
                             (seq.field.empty() ? std::string("is not set")
                                                : "names '" + seq.field + "'") +
                             " (one sequence field, read by model.sequence)");
    }
  }
  const InteractionSpec::Kind kind = spec.model.interaction.kind;
  if (kind == InteractionSpec::Kind::kDot || kind == InteractionSpec::Kind::kFm) {
    int dim = -1;
    std::string first;
    for (const SparseFieldSpec& f : spec.sparse_fields) {
      const TableSpec* table = spec.FindTable(f.table);
      if (table == nullptr) continue;
      if (dim < 0) {
        dim = table->dim;
        first = f.name;
      } else if (table->dim != dim) {
        return InvalidArgument("model.interaction.kind: " +
                               std::string(InteractionKindName(kind)) +
                               " needs every sparse feature at one dim; '" + first + "' has " +
                               std::to_string(dim) + ", '" + f.name + "' has " +
                               std::to_string(table->dim));
      }
    }
    if (spec.sparse_fields.size() < 2) {
      return InvalidArgument("model.interaction.kind: " +
                             std::string(InteractionKindName(kind)) +
                             " needs at least two sparse features");
    }
  }
  return Status::OK();
}

const char* InteractionKindName(InteractionSpec::Kind kind) {
  switch (kind) {
    case InteractionSpec::Kind::kNone: return "none";
    case InteractionSpec::Kind::kDot: return "dot";
    case InteractionSpec::Kind::kFm: return "fm";
    case InteractionSpec::Kind::kDcn: return "dcn";
  }
  return "unknown";
}

const char* SequenceEncoderName(SequenceSpec::Encoder encoder) {
  switch (encoder) {
    case SequenceSpec::Encoder::kDin: return "din";
    case SequenceSpec::Encoder::kBst: return "bst";
    case SequenceSpec::Encoder::kSum: return "sum";
    case SequenceSpec::Encoder::kMean: return "mean";
  }
  return "unknown";
}

const TableSpec* JobSpec::FindTable(const std::string& table_name) const {
  int index = TableIndex(table_name);
  return index < 0 ? nullptr : &tables[index];
}

int JobSpec::TableIndex(const std::string& table_name) const {
  for (size_t i = 0; i < tables.size(); ++i) {
    if (tables[i].name == table_name) return static_cast<int>(i);
  }
  return -1;
}

StatusOr<JobSpec> ParseJobSpec(const std::string& yaml_text, const std::string& origin) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    return InvalidArgument(origin + ": not valid YAML: " + e.what());
  }
  if (!root.IsMap()) return InvalidArgument(origin + ": the top level must be a mapping");

  JobSpec spec;
  auto parse = [&]() -> Status {
    MapReader r(root, "");
    MTPS_RETURN_IF_ERROR(r.Optional("name", &spec.name));
    MTPS_RETURN_IF_ERROR(ParseData(r.Node("data"), "data", &spec.data));

    YAML::Node features = r.Node("features");
    if (!features.IsDefined() || features.IsNull()) {
      return InvalidArgument("features: required field is missing");
    }
    MTPS_RETURN_IF_ERROR(ExpectMap(features, "features"));
    MapReader fr(features, "features");
    MTPS_RETURN_IF_ERROR(ForEach(fr.Node("sparse"), "features.sparse",
                                 [&](const YAML::Node& n, const std::string& p) {
                                   spec.sparse_fields.emplace_back();
                                   return ParseSparseField(n, p, &spec.sparse_fields.back());
                                 }));
    MTPS_RETURN_IF_ERROR(ForEach(fr.Node("dense"), "features.dense",
                                 [&](const YAML::Node& n, const std::string& p) {
                                   spec.dense_fields.emplace_back();
                                   return ParseDenseField(n, p, &spec.dense_fields.back());
                                 }));
    MTPS_RETURN_IF_ERROR(fr.Finish());

    MTPS_RETURN_IF_ERROR(ForEach(r.Node("tables"), "tables",
                                 [&](const YAML::Node& n, const std::string& p) {
                                   spec.tables.emplace_back();
                                   return ParseTable(n, p, &spec.tables.back());
                                 }));
    if (!r.Has("model")) return InvalidArgument("model: required field is missing");
    MTPS_RETURN_IF_ERROR(ParseModel(r.Node("model"), "model", &spec.model));
    MTPS_RETURN_IF_ERROR(ForEach(r.Node("tasks"), "tasks",
                                 [&](const YAML::Node& n, const std::string& p) {
                                   spec.tasks.emplace_back();
                                   return ParseTask(n, p, &spec.tasks.back());
                                 }));
    MTPS_RETURN_IF_ERROR(ParseTraining(r.Node("training"), "training", &spec.training));
    MTPS_RETURN_IF_ERROR(ParseCheckpoint(r.Node("checkpoint"), "checkpoint", &spec.checkpoint));
    MTPS_RETURN_IF_ERROR(r.Finish());
    return CrossCheck(spec);
  };
  // yaml-cpp throws where a node has an unexpected shape; every such case is a bad spec.
  Status status;
  try {
    status = parse();
  } catch (const YAML::Exception& e) {
    status = InvalidArgument(std::string("unreadable YAML structure: ") + e.what());
  }
  if (!status.ok()) return status.WithContext(origin);

  // The canonical text is the parsed tree emitted again: comments and layout drop out.
  YAML::Emitter canonical;
  canonical << root;
  spec.hash = Fnv1a64(canonical.c_str());
  return spec;
}

StatusOr<JobSpec> LoadJobSpec(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot open job spec '" + path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return DataLoss("error reading job spec '" + path + "'");
  return ParseJobSpec(text.str(), path);
}

}  // namespace mtps
