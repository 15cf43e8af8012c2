// RunSummary: JSON rendering and atomic writing of summary.json, and oracle.json reading.
#include "scheduler/run_summary.h"

#include <charconv>
#include <cmath>

// property_tree's JSON parser includes the deprecated <boost/bind.hpp>; this keeps its
// build-time notice quiet without changing behaviour.
#define BOOST_BIND_GLOBAL_PLACEHOLDERS
#include <boost/property_tree/json_parser.hpp>
#include <boost/property_tree/ptree.hpp>

#include "base/atomic_file.h"

namespace mtps::scheduler {

namespace {

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

// Shortest form that reads back exactly; JSON has no NaN or Inf, so those are null.
std::string JsonNumber(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, end);
}

}  // namespace

std::string RunSummaryJson(const RunSummary& s) {
  std::string out = "{\n";
  out += "  \"model\": " + JsonString(s.model) + ",\n";
  out += "  \"mode\": " + JsonString(s.mode) + ",\n";
  out += "  \"servers\": " + std::to_string(s.servers) + ",\n";
  out += "  \"workers\": " + std::to_string(s.workers) + ",\n";
  out += "  \"epochs\": " + std::to_string(s.epochs) + ",\n";
  if (s.best_epoch >= 0) {
    out += "  \"best_epoch\": " + std::to_string(s.best_epoch) + ",\n";
    out += "  \"stopped_early\": " + std::string(s.stopped_early ? "true" : "false") + ",\n";
  }
  if (!s.best_checkpoint.empty()) out += "  \"best_checkpoint\": " + JsonString(s.best_checkpoint) + ",\n";
  out += "  \"samples\": " + std::to_string(s.samples) + ",\n";
  out += "  \"skipped_records\": " + std::to_string(s.skipped_records) + ",\n";
  out += "  \"train_seconds\": " + JsonNumber(s.train_seconds) + ",\n";
  out += "  \"samples_per_sec\": " + JsonNumber(s.samples_per_sec) + ",\n";
  out += "  \"tasks\": {";
  for (size_t i = 0; i < s.tasks.size(); ++i) {
    const TaskSummary& t = s.tasks[i];
    out += i ? ",\n" : "\n";
    out += "    " + JsonString(t.name) + ": {\"auc\": " + JsonNumber(t.auc) +
           ", \"logloss\": " + JsonNumber(t.logloss);
    if (t.oracle_auc) out += ", \"oracle_auc\": " + JsonNumber(*t.oracle_auc);
    out += "}";
  }
  out += s.tasks.empty() ? "},\n" : "\n  },\n";
  out += "  \"history\": [";
  for (size_t i = 0; i < s.history.size(); ++i) {
    const EpochSummary& e = s.history[i];
    out += i ? ",\n" : "\n";
    out += "    {\"epoch\": " + std::to_string(e.epoch) + ", \"samples\": " + std::to_string(e.samples) +
           ", \"seconds\": " + JsonNumber(e.seconds) + ", \"tasks\": {";
    for (size_t t = 0; t < e.tasks.size(); ++t) {
      const EpochTaskSummary& task = e.tasks[t];
      out += (t ? ", " : "") + JsonString(task.name) + ": {\"train_loss\": " + JsonNumber(task.train_loss) +
             ", \"auc\": " + JsonNumber(task.auc) + ", \"logloss\": " + JsonNumber(task.logloss) + "}";
    }
    out += "}}";
  }
  out += s.history.empty() ? "]\n" : "\n  ]\n";
  return out + "}\n";
}

std::string SummaryPath(const std::string& run_dir) { return run_dir + "/summary.json"; }

Status WriteRunSummary(FileSystem& fs, const std::string& run_dir,
                       const RunSummary& summary) {
  MTPS_RETURN_IF_ERROR(fs.CreateDirs(run_dir));
  return WriteFileAtomically(fs, SummaryPath(run_dir), RunSummaryJson(summary))
      .WithContext("writing the run summary");
}

StatusOr<std::map<std::string, double>> ReadOracleAucs(const std::string& path,
                                                       const std::vector<std::string>& tasks) {
  namespace pt = boost::property_tree;
  pt::ptree root;
  try {
    pt::read_json(path, root);
  } catch (const pt::json_parser_error& e) {
    return DataLoss("oracle file " + path + ": " + e.what());
  }
  std::map<std::string, double> aucs;
  for (const std::string& task : tasks) {
    // Task names may hold '.', which ptree paths treat as a separator.
    const pt::ptree* node = nullptr;
    for (const pt::ptree* parent : {root.get_child_optional("tasks").get_ptr(), &root}) {
      if (parent == nullptr) continue;
      auto child = parent->find(task);
      if (child != parent->not_found()) {
        node = &child->second;
        break;
      }
    }
    if (node == nullptr) continue;
    std::optional<double> value;
    try {
      if (auto v = node->get_optional<double>(pt::ptree::path_type("auc", '\0'))) value = *v;
      else if (auto o = node->get_optional<double>(pt::ptree::path_type("oracle_auc", '\0'))) value = *o;
      else if (node->empty()) value = node->get_value<double>();
    } catch (const pt::ptree_error& e) {
      return DataLoss("oracle file " + path + ": task '" + task + "': " + e.what());
    }
    if (!value || !std::isfinite(*value) || *value < 0 || *value > 1) {
      return DataLoss("oracle file " + path + ": task '" + task + "' has no AUC in [0, 1]");
    }
    aucs[task] = *value;
  }
  return aucs;
}

}  // namespace mtps::scheduler
