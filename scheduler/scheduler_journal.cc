// The scheduler's journal file: encoding (one record a line, strings escaped, a CRC32C over
// the body) and the atomic write and strict read.
#include "scheduler/scheduler_journal.h"

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "base/atomic_file.h"
#include "base/crc32c.h"

namespace mtps::scheduler {
namespace {

constexpr char kMagic[] = "mtps-scheduler-journal 1";

// Tokens are separated by single spaces; a string may hold anything, so '%', ' ' and line
// ends are escaped, and the empty string is "%-".
std::string Escape(const std::string& s) {
  if (s.empty()) return "%-";
  std::string out;
  for (char c : s) {
    if (c == '%' || c == ' ' || c == '\n' || c == '\r') {
      char buf[4];
      std::snprintf(buf, sizeof(buf), "%%%02X", static_cast<unsigned char>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

bool Unescape(const std::string& s, std::string* out) {
  out->clear();
  if (s == "%-") return true;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      *out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return false;
    char* end = nullptr;
    const std::string hex = s.substr(i + 1, 2);
    const long v = std::strtol(hex.c_str(), &end, 16);
    if (end != hex.c_str() + 2) return false;
    *out += static_cast<char>(v);
    i += 2;
  }
  return true;
}

const char* RoleWord(proto::Role role) { return role == proto::Role::SERVER ? "server" : "worker"; }

bool ParseRole(const std::string& word, proto::Role* role) {
  if (word == "server") *role = proto::Role::SERVER;
  else if (word == "worker") *role = proto::Role::WORKER;
  else return false;
  return true;
}

std::string Double(double v) {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

bool ParseDouble(const std::string& s, double* v) {
  char* end = nullptr;
  *v = std::strtod(s.c_str(), &end);
  return !s.empty() && end == s.c_str() + s.size();
}

}  // namespace

std::string JournalPath(const std::string& checkpoint_root) { return checkpoint_root + "/scheduler.journal"; }

std::string EncodeSchedulerJournal(const SchedulerJournal& j) {
  std::ostringstream b;
  b << "job " << j.spec_hash << " " << j.num_servers << " " << j.num_workers << "\n";
  b << "incarnation " << j.incarnation << "\n";
  b << "phase " << Escape(j.phase) << "\n";
  b << "membership " << j.membership.epoch << " " << j.membership.last_generation << "\n";
  for (const NodeRecord& n : j.membership.nodes) {
    b << "node " << RoleWord(n.role) << " " << n.rank << " " << n.generation << " " << Escape(n.address)
      << " " << Escape(n.http_address) << " " << Escape(n.hostname) << " " << n.pid << " "
      << Escape(n.identity) << "\n";
  }
  for (const NodeKey& k : j.lost) b << "lost " << RoleWord(k.role) << " " << k.rank << "\n";
  for (const NodeKey& k : j.rejoined) b << "rejoined " << RoleWord(k.role) << " " << k.rank << "\n";
  if (j.last_checkpoint_step) b << "checkpoint_step " << *j.last_checkpoint_step << "\n";
  b << "next_checkpoint_step " << j.next_checkpoint_step << "\n";
  for (const WorkerPosition& p : j.committed_positions) {
    b << "position " << p.rank << " " << p.epoch << " " << p.records << " " << p.step << "\n";
  }
  for (const std::string& name : j.released_barriers) b << "released " << Escape(name) << "\n";
  if (j.best_model) b << "best_model " << j.best_model->epoch << " " << j.best_model->checkpoint_id << "\n";
  for (size_t r = 0; r < j.progress.size(); ++r) {
    const ProgressTracker::WorkerState& w = j.progress[r];
    b << "progress " << r << " " << w.reported << " " << w.done << " " << w.epoch << " " << w.step
      << " " << w.samples << " " << w.bad_records << " " << Double(w.samples_per_sec) << " "
      << Double(w.train_seconds) << "\n";
    for (const auto& [task, loss] : w.train_loss) {
      b << "train_loss " << r << " " << Escape(task) << " " << Double(loss) << "\n";
    }
    for (const auto& [task, m] : w.eval) {
      b << "eval " << r << " " << Escape(task) << " " << Double(m.loss) << " " << Double(m.auc) << " "
        << Double(m.logloss) << " " << Double(m.mse) << "\n";
    }
    // The per-epoch history of summary.json.
    for (const auto& [epoch, e] : w.epochs) {
      b << "epoch_record " << r << " " << epoch << " " << e.trained << " " << e.samples << " "
        << Double(e.seconds) << "\n";
      for (const auto& [task, loss] : e.train_loss) {
        b << "epoch_loss " << r << " " << epoch << " " << Escape(task) << " " << Double(loss) << "\n";
      }
      for (const auto& [task, m] : e.eval) {
        b << "epoch_eval " << r << " " << epoch << " " << Escape(task) << " " << Double(m.loss) << " "
          << Double(m.auc) << " " << Double(m.logloss) << " " << Double(m.mse) << "\n";
      }
    }
  }
  b << "end\n";
  const std::string body = b.str();
  char header[96];
  std::snprintf(header, sizeof(header), "%s\ncrc32c %08x %zu\n", kMagic, Crc32c(body.data(), body.size()),
                body.size());
  return header + body;
}

StatusOr<SchedulerJournal> DecodeSchedulerJournal(std::string_view bytes, const std::string& path) {
  auto loss = [&](const std::string& why) { return DataLoss("scheduler journal " + path + ": " + why); };
  const size_t first = bytes.find('\n');
  if (first == std::string_view::npos || bytes.substr(0, first) != kMagic) {
    return loss("not a scheduler journal (no '" + std::string(kMagic) + "' line)");
  }
  const size_t second = bytes.find('\n', first + 1);
  if (second == std::string_view::npos) return loss("truncated header");
  unsigned crc = 0;
  size_t size = 0;
  const std::string header(bytes.substr(first + 1, second - first - 1));
  if (std::sscanf(header.c_str(), "crc32c %8x %zu", &crc, &size) != 2) return loss("bad header '" + header + "'");
  const std::string_view body = bytes.substr(second + 1);
  if (body.size() != size) {
    return loss("body is " + std::to_string(body.size()) + " bytes, the header says " + std::to_string(size) +
                " (truncated or appended to)");
  }
  if (Crc32c(body.data(), body.size()) != crc) return loss("checksum mismatch (the file is damaged)");

  SchedulerJournal j;
  std::istringstream in{std::string(body)};
  std::string line;
  int line_no = 0;
  bool saw_job = false, saw_end = false;
  auto bad = [&](const std::string& why) { return loss("line " + std::to_string(line_no) + ": " + why + ": '" + line + "'"); };
  auto progress_of = [&](size_t rank) -> ProgressTracker::WorkerState* {
    return rank < j.progress.size() ? &j.progress[rank] : nullptr;
  };
  while (std::getline(in, line)) {
    ++line_no;
    std::istringstream f(line);
    std::string word;
    f >> word;
    if (saw_end) return bad("a record after 'end'");
    if (word == "job") {
      if (!(f >> j.spec_hash >> j.num_servers >> j.num_workers) || j.num_servers <= 0 || j.num_workers <= 0) {
        return bad("bad job record");
      }
      saw_job = true;
    } else if (word == "incarnation") {
      if (!(f >> j.incarnation)) return bad("bad incarnation");
    } else if (word == "phase") {
      std::string raw;
      if (!(f >> raw) || !Unescape(raw, &j.phase)) return bad("bad phase");
      if (j.phase != "running" && j.phase != "finishing" && j.phase != "done" && j.phase != "failed") {
        return bad("unknown phase");
      }
    } else if (word == "membership") {
      if (!(f >> j.membership.epoch >> j.membership.last_generation)) return bad("bad membership record");
    } else if (word == "node") {
      NodeRecord n;
      std::string role, address, http, host, identity;
      if (!(f >> role >> n.rank >> n.generation >> address >> http >> host >> n.pid >> identity) ||
          !ParseRole(role, &n.role) || !Unescape(address, &n.address) || !Unescape(http, &n.http_address) ||
          !Unescape(host, &n.hostname) || !Unescape(identity, &n.identity) || n.rank < 0) {
        return bad("bad node record");
      }
      n.spec_hash = j.spec_hash;
      j.membership.nodes.push_back(std::move(n));
    } else if (word == "lost" || word == "rejoined") {
      std::string role;
      NodeKey key{};
      if (!(f >> role >> key.rank) || !ParseRole(role, &key.role)) return bad("bad " + word + " record");
      if (word == "lost") j.lost.push_back(key);
      else j.rejoined.insert(key);
    } else if (word == "checkpoint_step") {
      uint64_t step = 0;
      if (!(f >> step)) return bad("bad checkpoint step");
      j.last_checkpoint_step = step;
    } else if (word == "next_checkpoint_step") {
      if (!(f >> j.next_checkpoint_step)) return bad("bad next checkpoint step");
    } else if (word == "position") {
      WorkerPosition p;
      if (!(f >> p.rank >> p.epoch >> p.records >> p.step)) return bad("bad position");
      j.committed_positions.push_back(p);
    } else if (word == "best_model") {
      BestModel best;
      if (!(f >> best.epoch >> best.checkpoint_id) || best.checkpoint_id == 0) return bad("bad best model record");
      j.best_model = best;
    } else if (word == "released") {
      std::string raw, name;
      if (!(f >> raw) || !Unescape(raw, &name)) return bad("bad barrier name");
      j.released_barriers.insert(name);
    } else if (word == "progress") {
      size_t rank = 0;
      ProgressTracker::WorkerState w;
      std::string sps, secs;
      if (!(f >> rank >> w.reported >> w.done >> w.epoch >> w.step >> w.samples >> w.bad_records >> sps >> secs) ||
          !ParseDouble(sps, &w.samples_per_sec) || !ParseDouble(secs, &w.train_seconds) || rank != j.progress.size()) {
        return bad("bad progress record");
      }
      j.progress.push_back(std::move(w));
    } else if (word == "train_loss" || word == "eval") {
      size_t rank = 0;
      std::string raw, task, loss_text;
      if (!(f >> rank >> raw >> loss_text) || !Unescape(raw, &task) || progress_of(rank) == nullptr) {
        return bad("bad " + word + " record");
      }
      double loss_value = 0;
      if (!ParseDouble(loss_text, &loss_value)) return bad("bad loss");
      if (word == "train_loss") {
        progress_of(rank)->train_loss[task] = loss_value;
      } else {
        TaskMetrics m{.loss = loss_value};
        std::string auc, logloss, mse;
        if (!(f >> auc >> logloss >> mse) || !ParseDouble(auc, &m.auc) || !ParseDouble(logloss, &m.logloss) ||
            !ParseDouble(mse, &m.mse)) {
          return bad("bad eval record");
        }
        progress_of(rank)->eval[task] = m;
      }
    } else if (word == "epoch_record" || word == "epoch_loss" || word == "epoch_eval") {
      size_t rank = 0;
      uint32_t epoch = 0;
      if (!(f >> rank >> epoch) || progress_of(rank) == nullptr) return bad("bad " + word + " record");
      ProgressTracker::EpochRecord& e = progress_of(rank)->epochs[epoch];
      std::string a, b, c, d, raw, task;
      if (word == "epoch_record") {
        if (!(f >> e.trained >> e.samples >> a) || !ParseDouble(a, &e.seconds)) return bad("bad epoch_record");
      } else if (!(f >> raw >> a) || !Unescape(raw, &task)) {
        return bad("bad " + word + " record");
      } else if (word == "epoch_loss") {
        if (!ParseDouble(a, &e.train_loss[task])) return bad("bad loss");
      } else {
        TaskMetrics& m = e.eval[task];
        if (!(f >> b >> c >> d) || !ParseDouble(a, &m.loss) || !ParseDouble(b, &m.auc) ||
            !ParseDouble(c, &m.logloss) || !ParseDouble(d, &m.mse)) {
          return bad("bad epoch_eval record");
        }
      }
    } else if (word == "end") {
      saw_end = true;
    } else {
      return bad("unknown record");
    }
  }
  if (!saw_job) return loss("no job record");
  if (!saw_end) return loss("no 'end' record");
  if (!j.progress.empty() && static_cast<int>(j.progress.size()) != j.num_workers) {
    return loss("progress of " + std::to_string(j.progress.size()) + " workers for a job of " +
                std::to_string(j.num_workers));
  }
  return j;
}

Status WriteSchedulerJournal(FileSystem& fs, const std::string& path,
                             const SchedulerJournal& journal) {
  const std::string bytes = EncodeSchedulerJournal(journal);
  const std::string dir = std::filesystem::path(path).parent_path().string();
  MTPS_RETURN_IF_ERROR(fs.CreateDirs(dir));
  return WriteFileAtomically(fs, path, bytes);
}

StatusOr<SchedulerJournal> ReadSchedulerJournal(FileSystem& fs, const std::string& path) {
  if (!std::filesystem::exists(path)) return NotFound("no scheduler journal at " + path);
  MTPS_ASSIGN_OR_RETURN(auto file, fs.NewReadableFile(path));
  std::string bytes(file->Size(), '\0');
  size_t read = 0;
  MTPS_RETURN_IF_ERROR(file->Read(bytes.data(), bytes.size(), &read));
  bytes.resize(read);
  return DecodeSchedulerJournal(bytes, path);
}

}  // namespace mtps::scheduler
