// ProgressReporter and ProgressDisplay: what a person watching a job sees — a live line
// on a terminal (epoch, step, samples/s, per-task loss, ETA) redrawn in place, or plain
// periodic lines where the output is a file or a pipe (kubectl logs, CI); a line per
// finished epoch and a last line for the run, both kept.
//
//   ProgressDisplay display(fd, ProgressDisplay::ModeFor(fd));   // live on a tty
//   ProgressReporter reporter(&clock, {.epochs = 8, .tasks = {"ctr"}}, &display);
//   reporter.Tick(tracker.Current(), tracker.History());   // often: it decides when to write
//   reporter.Finish(summary);
//
// The reporter also writes the periodic and per-epoch lines to the log (LOG(INFO)). Its
// ETA is the samples still to train (samples per epoch × epochs left, less what the
// current epoch has done) over the rate of the last kRateWindow: samples per epoch from
// the largest epoch trained so far, before the first one ends from the records the
// workers say an epoch has. Early stopping may end a run before its ETA.
// Thread-safety: neither class is thread-safe; the scheduler's main loop owns both.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "scheduler/progress_tracker.h"
#include "scheduler/run_summary.h"

namespace mtps::scheduler {

// Samples per second over the last `window`, from (time, samples so far) observations.
class RecentRate {
 public:
  explicit RecentRate(std::chrono::nanoseconds window) : window_(window) {}
  void Add(Clock::TimePoint now, uint64_t samples);
  // 0 until the observations span a second.
  double PerSecond() const;

 private:
  std::chrono::nanoseconds window_;
  std::deque<std::pair<Clock::TimePoint, uint64_t>> points_;
};

// Seconds left at `rate`: nullopt when the epoch size or the rate is unknown (0).
std::optional<double> EtaSeconds(uint64_t samples_per_epoch, int epochs, const ClusterProgress& c,
                                 double rate);
std::string FormatDuration(double seconds);  // "45s", "3m05s", "2h07m"
std::string FormatCount(uint64_t n);         // "1,234,567"

// "epoch 2 step 528 | 61,200 samples/s | ctr loss 0.2912 | cvr loss 0.0834 | ETA 1m12s"
std::string FormatStatusLine(const ClusterProgress& c, const std::vector<std::string>& tasks, double rate,
                             std::optional<double> eta_seconds);
// "epoch 1: 180,000 samples in 2.6 s | ctr loss 0.2912 auc 0.7106 | cvr loss 0.0834 auc 0.7834"
std::string FormatEpochLine(const EpochSummary& epoch);
// "done: 5 epochs (best 2, stopped early), 900,000 samples in 7.5 s, 120,225 samples/s | ctr auc 0.7165"
std::string FormatFinalLine(const RunSummary& summary);

class ProgressDisplay {
 public:
  enum class Mode { kLive, kLines };
  // kLive when `fd` is a terminal, kLines otherwise.
  static Mode ModeFor(int fd);

  // Writes to `fd`, which it does not own. A write that fails turns the display off.
  ProgressDisplay(int fd, Mode mode) : fd_(fd), mode_(mode) {}
  ~ProgressDisplay();
  Mode mode() const { return mode_; }

  // kLive: redraws the one status line in place (cut to the terminal's width); kLines:
  // writes it as a line.
  void Status(const std::string& line);
  // A line that stays: above the live status line, which is drawn again below it.
  void Permanent(const std::string& line);
  // kLive: erases the status line (the run's last line replaces it).
  void ClearStatus();

 private:
  void Write(const std::string& bytes);

  int fd_;
  Mode mode_;
  std::string status_;  // kLive: the line on screen now
};

struct ProgressReporterOptions {
  int epochs = 1;                  // training.epochs, for the ETA
  std::vector<std::string> tasks;  // in the job's order
  std::chrono::nanoseconds interval = std::chrono::seconds(10);      // log and plain lines
  std::chrono::nanoseconds live_interval = std::chrono::milliseconds(500);  // live redraws
};

class ProgressReporter {
 public:
  static constexpr std::chrono::seconds kRateWindow{20};

  // `display` may be null (the log only); it must outlive the reporter.
  ProgressReporter(const Clock* clock, ProgressReporterOptions options, ProgressDisplay* display);

  // Call often while the job runs: writes the status line when it is due, and a line for
  // every epoch that is over (evaluated, or every worker is past it).
  void Tick(const ClusterProgress& c, const std::vector<EpochSummary>& history);
  // The run's last line, after any epoch lines not written yet.
  void Finish(const RunSummary& summary);

  double rate() const { return rate_.PerSecond(); }
  // The ETA of the latest Tick; nullopt when unknown.
  std::optional<double> eta_seconds() const { return eta_; }

 private:
  void WriteEpochs(const std::vector<EpochSummary>& history, uint32_t current_epoch, bool all);

  const Clock* clock_;
  ProgressReporterOptions options_;
  ProgressDisplay* display_;
  RecentRate rate_;
  std::optional<double> eta_;
  Clock::TimePoint last_log_;
  Clock::TimePoint last_status_;
  bool status_written_ = false;
  int64_t epochs_written_ = -1;  // the last epoch whose line was written
};

}  // namespace mtps::scheduler
