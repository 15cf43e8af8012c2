// ProgressReporter and ProgressDisplay: the status, epoch and final lines, the recent
// rate and ETA, and their writing to a terminal (redrawn in place) or as plain lines.
#include "scheduler/progress_display.h"

#include <errno.h>
#include <glog/logging.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace mtps::scheduler {

void RecentRate::Add(Clock::TimePoint now, uint64_t samples) {
  // A worker's count starts again when it is replaced: measure afresh.
  if (!points_.empty() && samples < points_.back().second) points_.clear();
  if (points_.size() >= 2 && now - points_[points_.size() - 2].first < std::chrono::milliseconds(200)) {
    points_.back() = {now, samples};  // a tick every few ms needs no point of its own
  } else {
    points_.emplace_back(now, samples);
  }
  // The oldest point kept is the newest one at least `window_` old: the rate spans the window.
  while (points_.size() > 2 && points_[1].first <= now - window_) points_.pop_front();
}

double RecentRate::PerSecond() const {
  if (points_.size() < 2) return 0;
  const double span = std::chrono::duration<double>(points_.back().first - points_.front().first).count();
  if (span < 1) return 0;
  return static_cast<double>(points_.back().second - points_.front().second) / span;
}

std::optional<double> EtaSeconds(uint64_t samples_per_epoch, int epochs, const ClusterProgress& c,
                                 double rate) {
  if (samples_per_epoch == 0 || !(rate > 0)) return std::nullopt;
  if (static_cast<int64_t>(c.epoch) >= epochs) return 0.0;
  const double left = static_cast<double>(samples_per_epoch) * (epochs - static_cast<int64_t>(c.epoch)) -
                      static_cast<double>(std::min(c.epoch_position, samples_per_epoch));
  return left / rate;
}

std::string FormatDuration(double seconds) {
  const int64_t s = static_cast<int64_t>(std::llround(std::max(0.0, seconds)));
  char buf[32];
  if (s < 60) {
    std::snprintf(buf, sizeof(buf), "%llds", static_cast<long long>(s));
  } else if (s < 3600) {
    std::snprintf(buf, sizeof(buf), "%lldm%02llds", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  } else {
    std::snprintf(buf, sizeof(buf), "%lldh%02lldm", static_cast<long long>(s / 3600),
                  static_cast<long long>(s % 3600 / 60));
  }
  return buf;
}

std::string FormatCount(uint64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

namespace {

std::string Fixed(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), format, v);
  return buf;
}

}  // namespace

std::string FormatStatusLine(const ClusterProgress& c, const std::vector<std::string>& tasks, double rate,
                             std::optional<double> eta_seconds) {
  if (c.reporting == 0) return "waiting for the workers' first progress report";
  std::string line = "epoch " + std::to_string(c.epoch) + " step " + std::to_string(c.max_step) + " | " +
                     FormatCount(static_cast<uint64_t>(std::llround(rate))) + " samples/s";
  for (const std::string& task : tasks) {
    auto loss = c.train_loss.find(task);
    if (loss != c.train_loss.end()) line += " | " + task + " loss " + Fixed("%.4f", loss->second);
  }
  return line + " | ETA " + (eta_seconds ? FormatDuration(*eta_seconds) : "-");
}

std::string FormatEpochLine(const EpochSummary& e) {
  std::string line = "epoch " + std::to_string(e.epoch) + ": " + FormatCount(e.samples) + " samples in " +
                     Fixed("%.1f", e.seconds) + " s";
  for (const EpochTaskSummary& task : e.tasks) {
    std::string metrics;
    if (std::isfinite(task.train_loss)) metrics += " loss " + Fixed("%.4f", task.train_loss);
    if (std::isfinite(task.auc)) metrics += " auc " + Fixed("%.4f", task.auc);
    if (!metrics.empty()) line += " | " + task.name + metrics;
  }
  return line;
}

std::string FormatFinalLine(const RunSummary& s) {
  std::string line = "done: " + std::to_string(s.epochs) + (s.epochs == 1 ? " epoch" : " epochs");
  if (s.best_epoch >= 0) {
    line += " (best " + std::to_string(s.best_epoch) + (s.stopped_early ? ", stopped early)" : ")");
  }
  line += ", " + FormatCount(s.samples) + " samples in " + Fixed("%.1f", s.train_seconds) + " s, " +
          FormatCount(static_cast<uint64_t>(std::llround(s.samples_per_sec))) + " samples/s";
  for (const TaskSummary& task : s.tasks) {
    if (!std::isfinite(task.auc)) continue;
    line += " | " + task.name + " auc " + Fixed("%.4f", task.auc);
    if (task.oracle_auc) line += " (oracle " + Fixed("%.4f", *task.oracle_auc) + ")";
  }
  return line;
}

ProgressDisplay::Mode ProgressDisplay::ModeFor(int fd) { return isatty(fd) ? Mode::kLive : Mode::kLines; }

ProgressDisplay::~ProgressDisplay() {
  // A run that ended without its last line leaves the status line; the shell goes below it.
  if (mode_ == Mode::kLive && !status_.empty()) Write("\n");
}

void ProgressDisplay::Status(const std::string& line) {
  if (mode_ == Mode::kLines) return Write(line + "\n");
  status_ = line;
  winsize size{};
  // A line longer than the terminal would wrap, and "\r" would no longer reach its start.
  if (ioctl(fd_, TIOCGWINSZ, &size) == 0 && size.ws_col > 1 && status_.size() >= size.ws_col) {
    status_.resize(size.ws_col - 1);
  }
  Write("\r" + status_ + "\033[K");
}

void ProgressDisplay::Permanent(const std::string& line) {
  if (mode_ == Mode::kLines) return Write(line + "\n");
  Write("\r\033[K" + line + "\n" + status_);
}

void ProgressDisplay::ClearStatus() {
  if (mode_ == Mode::kLive && !status_.empty()) Write("\r\033[K");
  status_.clear();
}

void ProgressDisplay::Write(const std::string& bytes) {
  size_t done = 0;
  while (fd_ >= 0 && done < bytes.size()) {
    const ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
    if (n > 0) {
      done += static_cast<size_t>(n);
    } else if (n < 0 && errno != EINTR) {
      // The reader went away (a closed pipe): the job goes on, only the display stops.
      LOG(WARNING) << "progress display: writing to fd " << fd_ << " failed (errno " << errno
                   << "); no more progress lines there";
      fd_ = -1;
    }
  }
}

ProgressReporter::ProgressReporter(const Clock* clock, ProgressReporterOptions options,
                                   ProgressDisplay* display)
    : clock_(clock),
      options_(std::move(options)),
      display_(display),
      rate_(kRateWindow),
      last_log_(clock->Now()),
      last_status_(clock->Now()) {}

void ProgressReporter::Tick(const ClusterProgress& c, const std::vector<EpochSummary>& history) {
  const Clock::TimePoint now = clock_->Now();
  rate_.Add(now, c.samples);
  // The largest epoch trained so far: a replaced worker's first epoch may be partial.
  uint64_t samples_per_epoch = 0;
  for (const EpochSummary& e : history) samples_per_epoch = std::max(samples_per_epoch, e.samples);
  if (samples_per_epoch == 0) samples_per_epoch = c.epoch_records;
  const double rate = rate_.PerSecond();
  eta_ = EtaSeconds(samples_per_epoch, options_.epochs, c, rate);
  WriteEpochs(history, c.epoch, c.reporting > 0 && c.done == c.reporting);

  const std::string status = FormatStatusLine(c, options_.tasks, rate, eta_);
  if (now - last_log_ >= options_.interval) {
    last_log_ = now;
    LOG(INFO) << "progress: " << status;
    if (display_ && display_->mode() == ProgressDisplay::Mode::kLines) display_->Status(status);
  }
  if (display_ && display_->mode() == ProgressDisplay::Mode::kLive &&
      (!status_written_ || now - last_status_ >= options_.live_interval)) {
    status_written_ = true;
    last_status_ = now;
    display_->Status(status);
  }
}

void ProgressReporter::Finish(const RunSummary& summary) {
  WriteEpochs(summary.history, UINT32_MAX, /*all=*/true);
  const std::string line = FormatFinalLine(summary);
  LOG(INFO) << "progress: " << line;
  if (display_) {
    display_->ClearStatus();
    display_->Permanent(line);
  }
}

void ProgressReporter::WriteEpochs(const std::vector<EpochSummary>& history, uint32_t current_epoch, bool all) {
  for (const EpochSummary& e : history) {
    if (e.epoch <= epochs_written_) continue;
    const bool evaluated = std::any_of(e.tasks.begin(), e.tasks.end(),
                                       [](const EpochTaskSummary& t) { return std::isfinite(t.auc); });
    // An epoch is over once evaluated (every worker closed it before the evaluation's
    // barrier), or once every worker is past it.
    if (!evaluated && !all && static_cast<uint32_t>(e.epoch) >= current_epoch) break;
    epochs_written_ = e.epoch;
    const std::string line = FormatEpochLine(e);
    LOG(INFO) << "progress: " << line;
    if (display_) display_->Permanent(line);
  }
}

}  // namespace mtps::scheduler
