// Tests of what a person watching a job sees: the status, epoch and final lines, the
// recent rate and ETA on an injected clock, and the live (terminal) / plain (pipe) choice.
#include "scheduler/progress_display.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cmath>
#include <csignal>

namespace mtps::scheduler {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using std::chrono::milliseconds;
using std::chrono::seconds;

// Everything written so far to a pipe's other end.
std::string Drain(int fd) {
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;) out.append(buf, static_cast<size_t>(n));
  return out;
}

struct Pipe {
  Pipe() { EXPECT_EQ(pipe(fds), 0); }
  ~Pipe() {
    close(fds[0]);
    close(fds[1]);
  }
  int fds[2] = {-1, -1};
};

// A pseudo-terminal: `user` is what a program sees as its terminal.
struct Pty {
  Pty() {
    master = posix_openpt(O_RDWR | O_NOCTTY);
    EXPECT_GE(master, 0);
    EXPECT_EQ(grantpt(master), 0);
    EXPECT_EQ(unlockpt(master), 0);
    user = open(ptsname(master), O_RDWR | O_NOCTTY);
    EXPECT_GE(user, 0);
  }
  ~Pty() {
    close(user);
    close(master);
  }
  // Everything written to `user` so far, as the terminal passes it on: a marker written
  // last tells when it has all come through (a pty hands data over asynchronously).
  std::string Drain() {
    const std::string marker = "<end of output>";
    EXPECT_EQ(write(user, marker.data(), marker.size()), static_cast<ssize_t>(marker.size()));
    std::string out;
    char buf[4096];
    while (out.size() < marker.size() || out.compare(out.size() - marker.size(), marker.size(), marker) != 0) {
      pollfd p{.fd = master, .events = POLLIN, .revents = 0};
      if (poll(&p, 1, 10000) != 1) {
        ADD_FAILURE() << "the terminal passed on only '" << out << "'";
        return out;
      }
      const ssize_t n = read(master, buf, sizeof(buf));
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out.substr(0, out.size() - marker.size());
  }
  void SetColumns(int columns) {
    winsize size{};
    size.ws_row = 24;
    size.ws_col = static_cast<unsigned short>(columns);
    EXPECT_EQ(ioctl(user, TIOCSWINSZ, &size), 0);
  }
  int master = -1, user = -1;
};

TEST(ProgressFormatTest, DurationsAndCounts) {
  EXPECT_EQ(FormatDuration(0), "0s");
  EXPECT_EQ(FormatDuration(44.6), "45s");
  EXPECT_EQ(FormatDuration(185), "3m05s");
  EXPECT_EQ(FormatDuration(7620), "2h07m");
  EXPECT_EQ(FormatDuration(-3), "0s");
  EXPECT_EQ(FormatCount(0), "0");
  EXPECT_EQ(FormatCount(999), "999");
  EXPECT_EQ(FormatCount(1000), "1,000");
  EXPECT_EQ(FormatCount(1234567), "1,234,567");
}

TEST(ProgressFormatTest, StatusLineHasEpochStepRateLossesAndEta) {
  ClusterProgress c;
  EXPECT_EQ(FormatStatusLine(c, {"ctr"}, 0, std::nullopt), "waiting for the workers' first progress report");
  c.reporting = 2;
  c.epoch = 2;
  c.max_step = 528;
  c.train_loss = {{"ctr", 0.29123}, {"cvr", 0.0834}};
  EXPECT_EQ(FormatStatusLine(c, {"ctr", "cvr"}, 61200.4, 72.0),
            "epoch 2 step 528 | 61,200 samples/s | ctr loss 0.2912 | cvr loss 0.0834 | ETA 1m12s");
  EXPECT_THAT(FormatStatusLine(c, {"ctr"}, 0, std::nullopt), EndsWith("| ETA -"));
}

TEST(ProgressFormatTest, EpochAndFinalLines) {
  EpochSummary e{.epoch = 1, .samples = 180000, .seconds = 2.64,
                 .tasks = {{"ctr", 0.29123, 0.71059, 0.29}, {"cvr", 0.0834, NAN, 0.08}}};
  EXPECT_EQ(FormatEpochLine(e), "epoch 1: 180,000 samples in 2.6 s | ctr loss 0.2912 auc 0.7106 | cvr loss 0.0834");
  RunSummary s{.epochs = 5, .best_epoch = 2, .stopped_early = true, .samples = 900000, .train_seconds = 7.49,
               .samples_per_sec = 120225.2, .tasks = {{"ctr", 0.71649, 0.29, 0.7536}, {"cvr", NAN, 0.08, {}}}};
  EXPECT_EQ(FormatFinalLine(s),
            "done: 5 epochs (best 2, stopped early), 900,000 samples in 7.5 s, 120,225 samples/s | "
            "ctr auc 0.7165 (oracle 0.7536)");
}

TEST(RecentRateTest, FollowsTheLastWindowOnAnInjectedClock) {
  ManualClock clock;
  RecentRate rate(seconds(10));
  rate.Add(clock.Now(), 0);
  EXPECT_EQ(rate.PerSecond(), 0) << "one point";
  clock.Advance(milliseconds(500));
  rate.Add(clock.Now(), 500);
  EXPECT_EQ(rate.PerSecond(), 0) << "under a second of observations";
  for (int i = 0; i < 20; ++i) {  // 1000 samples/s for 10.5 s more
    clock.Advance(milliseconds(500));
    rate.Add(clock.Now(), 1000 + 500 * static_cast<uint64_t>(i));
  }
  EXPECT_NEAR(rate.PerSecond(), 1000, 1);
  const uint64_t at = 1000 + 500 * 19;
  for (int i = 1; i <= 40; ++i) {  // then 100 samples/s for 20 s: the old rate leaves the window
    clock.Advance(milliseconds(500));
    rate.Add(clock.Now(), at + 50 * static_cast<uint64_t>(i));
  }
  EXPECT_NEAR(rate.PerSecond(), 100, 1);
  rate.Add(clock.Now(), 10);  // a replaced worker's count starts again
  EXPECT_EQ(rate.PerSecond(), 0);
}

TEST(EtaTest, EpochsLeftTimesTheEpochLessWhatIsDoneOverTheRate) {
  ClusterProgress c;
  c.epoch = 1;
  c.epoch_position = 5000;
  EXPECT_DOUBLE_EQ(*EtaSeconds(10000, 3, c, 1000), 15.0);  // (2 × 10000 − 5000) / 1000
  EXPECT_FALSE(EtaSeconds(0, 3, c, 1000)) << "epoch size unknown";
  EXPECT_FALSE(EtaSeconds(10000, 3, c, 0)) << "no rate yet";
  c.epoch = 3;
  EXPECT_DOUBLE_EQ(*EtaSeconds(10000, 3, c, 1000), 0.0);
}

TEST(ProgressDisplayTest, ATerminalIsLiveAPipeOrFileIsNot) {
  Pty pty;
  Pipe pipe;
  EXPECT_EQ(ProgressDisplay::ModeFor(pty.user), ProgressDisplay::Mode::kLive);
  EXPECT_EQ(ProgressDisplay::ModeFor(pipe.fds[1]), ProgressDisplay::Mode::kLines);
  char path[] = "/tmp/progress_display_testXXXXXX";
  const int file = mkstemp(path);
  ASSERT_GE(file, 0);
  EXPECT_EQ(ProgressDisplay::ModeFor(file), ProgressDisplay::Mode::kLines);
  close(file);
  unlink(path);
}

TEST(ProgressDisplayTest, LiveRedrawsOneLineInPlaceAndKeepsPermanentLinesAbove) {
  Pty pty;
  pty.SetColumns(40);
  {
    ProgressDisplay display(pty.user, ProgressDisplay::Mode::kLive);
    display.Status("epoch 0 step 50");
    display.Status(std::string(100, 'x'));  // wider than the terminal
    display.Permanent("epoch 0: done");
    display.ClearStatus();
  }
  const std::string out = pty.Drain();
  // The terminal turns "\n" into "\r\n".
  EXPECT_EQ(out, "\repoch 0 step 50\033[K\r" + std::string(39, 'x') + "\033[K\r\033[Kepoch 0: done\r\n" +
                     std::string(39, 'x') + "\r\033[K");
}

TEST(ProgressDisplayTest, LiveLineLeftOnScreenGetsANewlineAtTheEnd) {
  Pty pty;
  { ProgressDisplay(pty.user, ProgressDisplay::Mode::kLive).Status("step 1"); }
  EXPECT_THAT(pty.Drain(), EndsWith("step 1\033[K\r\n"));
}

TEST(ProgressDisplayTest, AClosedReaderTurnsTheDisplayOff) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  close(fds[0]);
  signal(SIGPIPE, SIG_IGN);
  ProgressDisplay display(fds[1], ProgressDisplay::Mode::kLines);
  display.Status("a");  // EPIPE: no crash, no loop
  display.Status("b");
  close(fds[1]);
}

// Reports of a 3-epoch job of 10,000 samples per epoch at 1,000 samples/s.
class ProgressReporterTest : public ::testing::Test {
 protected:
  ClusterProgress At(uint32_t epoch, uint64_t samples, uint64_t position) {
    ClusterProgress c;
    c.reporting = 2;
    c.epoch = epoch;
    c.max_step = samples / 100;
    c.samples = samples;
    c.epoch_position = position;
    c.epoch_records = 10000;
    c.train_loss = {{"ctr", 0.5}};
    return c;
  }
  static EpochSummary Epoch(int epoch, double auc) {
    return {.epoch = epoch, .samples = 10000, .seconds = 10, .tasks = {{"ctr", 0.45, auc, 0.4}}};
  }
  ManualClock clock_;
  Pipe pipe_;
};

TEST_F(ProgressReporterTest, PlainLinesEveryIntervalEpochLinesOnceAndAFinalRate) {
  ProgressDisplay display(pipe_.fds[1], ProgressDisplay::Mode::kLines);
  ProgressReporter reporter(&clock_, {.epochs = 3, .tasks = {"ctr"}, .interval = seconds(10)}, &display);
  std::vector<EpochSummary> history;
  uint64_t samples = 0;
  for (int i = 0; i < 50; ++i) {  // 5 s at 1000 samples/s
    clock_.Advance(milliseconds(100));
    samples += 100;
    reporter.Tick(At(0, samples, samples), history);
  }
  EXPECT_EQ(Drain(pipe_.fds[0]), "") << "no line before the interval";
  EXPECT_NEAR(reporter.rate(), 1000, 1);
  // Before an epoch ends, its size comes from the records the workers report.
  ASSERT_TRUE(reporter.eta_seconds());
  EXPECT_NEAR(*reporter.eta_seconds(), 25, 0.1);  // (3 × 10000 − 5000) / 1000
  for (int i = 0; i < 60; ++i) {
    clock_.Advance(milliseconds(100));
    samples += 100;
    if (samples == 10000) history.push_back(Epoch(0, 0.7));  // epoch 0 trained and evaluated
    const uint32_t epoch = samples <= 10000 ? 0 : 1;
    reporter.Tick(At(epoch, samples, samples - 10000 * epoch), history);
  }
  std::string out = Drain(pipe_.fds[0]);
  EXPECT_THAT(out, HasSubstr("epoch 0 step 100 | 1,000 samples/s | ctr loss 0.5000 | ETA 20s\n"));
  EXPECT_THAT(out, HasSubstr("epoch 0: 10,000 samples in 10.0 s | ctr loss 0.4500 auc 0.7000\n"));
  // An epoch line once, whatever the ticks after it.
  EXPECT_EQ(out.find("epoch 0: "), out.rfind("epoch 0: "));

  // Epoch 1 is trained but not evaluated: its line waits for the evaluation or for the
  // workers to move on; the run's end writes it.
  history.push_back(Epoch(1, NAN));
  reporter.Tick(At(1, 20000, 10000), history);
  EXPECT_THAT(Drain(pipe_.fds[0]), Not(HasSubstr("epoch 1: ")));
  RunSummary summary{.epochs = 2, .samples = 20000, .train_seconds = 20, .samples_per_sec = 1000,
                     .tasks = {{"ctr", 0.7, 0.4, {}}}, .history = history};
  reporter.Finish(summary);
  out = Drain(pipe_.fds[0]);
  EXPECT_THAT(out, StartsWith("epoch 1: 10,000 samples in 10.0 s | ctr loss 0.4500\n"));
  EXPECT_THAT(out, EndsWith("done: 2 epochs, 20,000 samples in 20.0 s, 1,000 samples/s | ctr auc 0.7000\n"));
  EXPECT_THAT(out, Not(HasSubstr(" 0 samples/s")));
}

TEST_F(ProgressReporterTest, LiveRedrawsEveryHalfSecondAndTheEndReplacesTheLine) {
  Pty pty;
  pty.SetColumns(200);
  ProgressDisplay display(pty.user, ProgressDisplay::Mode::kLive);
  ProgressReporter reporter(&clock_, {.epochs = 3, .tasks = {"ctr"}, .interval = seconds(10)}, &display);
  uint64_t samples = 0;
  for (int i = 0; i < 20; ++i) {  // 2 s: the first tick and then one redraw per 0.5 s
    clock_.Advance(milliseconds(100));
    samples += 100;
    reporter.Tick(At(0, samples, samples), {});
  }
  std::string out = pty.Drain();
  size_t redraws = 0;
  for (size_t at = out.find('\r'); at != std::string::npos; at = out.find('\r', at + 1)) ++redraws;
  EXPECT_EQ(redraws, 4u) << out;  // at 0.1, 0.6, 1.1 and 1.6 s
  EXPECT_THAT(out, HasSubstr("\repoch 0 step 16 | 1,000 samples/s | ctr loss 0.5000 | ETA 28s\033[K"));
  reporter.Finish(RunSummary{.epochs = 1, .samples = 2000, .train_seconds = 2, .samples_per_sec = 1000});
  out = pty.Drain();
  EXPECT_EQ(out, "\r\033[K\r\033[Kdone: 1 epoch, 2,000 samples in 2.0 s, 1,000 samples/s\r\n");
}

}  // namespace
}  // namespace mtps::scheduler
