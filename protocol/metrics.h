// Prometheus metrics: counters, gauges and fixed-bucket histograms with labels, kept in a
// registry that renders the text exposition format served at /metrics.
//
//   MetricsRegistry registry;                                   // made by main(), passed down
//   Counter* pulls = registry.AddCounter("mtps_requests_total", "Requests served.",
//                                        {{"kind", "sparse_pull"}});
//   Histogram* latency = registry.AddHistogram("mtps_request_seconds", "Request latency.",
//                                              LatencyBuckets(), {{"kind", "sparse_pull"}});
//   pulls->Increment();                 // hot path: one relaxed atomic add
//   latency->Observe(0.0012);           // hot path: a bucket search and atomic adds
//   std::string text = registry.Render();
//
// Thread-safety: Add*() and Render() may be called from any thread (they take the
// registry's mutex; call Add*() at set-up, not per request). The returned metric pointers
// stay valid for the registry's lifetime; their update methods are lock-free and may be
// called concurrently from any number of threads. A scrape that races with updates sees
// each value at some moment; a histogram's buckets, _count and _sum are each exact but
// may be from slightly different moments.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mtps {

// Label name → value pairs of one series, e.g. {{"kind", "sparse_pull"}}.
using MetricLabels = std::vector<std::pair<std::string, std::string>>;

// A monotonically increasing integer (requests, bytes, rows).
class Counter {
 public:
  void Increment(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  // Own cache line: counters of different series are bumped by different threads.
  alignas(64) std::atomic<uint64_t> value_{0};
};

// A value that goes up and down (rows held, samples per second, node state).
class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double delta) { value_.fetch_add(delta, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  alignas(64) std::atomic<double> value_{0.0};
};

// Counts observations into fixed buckets (upper bounds, inclusive, as Prometheus `le`),
// plus their count and sum.
class Histogram {
 public:
  // `bounds` must be finite and strictly increasing (checked when registered).
  explicit Histogram(std::vector<double> bounds);

  void Observe(double value);

  const std::vector<double>& bounds() const { return bounds_; }
  // Observations in bucket i alone (not cumulative); index bounds().size() is +Inf.
  uint64_t bucket_count(size_t i) const { return counts_[i].value.load(std::memory_order_relaxed); }
  uint64_t count() const;  // sum of the buckets
  double sum() const { return sum_.load(std::memory_order_relaxed); }

 private:
  struct alignas(64) Slot {
    std::atomic<uint64_t> value{0};
  };
  std::vector<double> bounds_;
  std::unique_ptr<Slot[]> counts_;  // bounds_.size() + 1 slots
  alignas(64) std::atomic<double> sum_{0.0};
};

// Bounds start, start*factor, ... (`count` of them).
std::vector<double> ExponentialBuckets(double start, double factor, int count);
// Request latency in seconds: 50 µs to about 13 s, doubling.
std::vector<double> LatencyBuckets();

// Owns every metric of one process and renders them. Not copyable.
class MetricsRegistry {
 public:
  MetricsRegistry();
  ~MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // Returns the series `name`{labels}, creating it (and its family, with `help`) if new;
  // the same name and labels give the same object. A name or label name that Prometheus
  // would reject, or a name already used by another metric type (or, for histograms,
  // other bounds), is a programming error and aborts with a message naming it.
  Counter* AddCounter(std::string_view name, std::string_view help, const MetricLabels& labels = {});
  Gauge* AddGauge(std::string_view name, std::string_view help, const MetricLabels& labels = {});
  Histogram* AddHistogram(std::string_view name, std::string_view help, std::vector<double> bounds,
                          const MetricLabels& labels = {});
  // A gauge computed at each scrape (table rows, queue depth). `read` runs on the scraping
  // thread under the registry's mutex; it must be thread-safe, must not call back into the
  // registry, and must stay callable for the registry's lifetime.
  void AddGaugeFunction(std::string_view name, std::string_view help, const MetricLabels& labels,
                        std::function<double()> read);
  // A counter read at each scrape from a count kept elsewhere that only grows (a table's
  // evictions): typed `counter`, so rate() applies. The same contract as AddGaugeFunction.
  void AddCounterFunction(std::string_view name, std::string_view help, const MetricLabels& labels,
                          std::function<double()> read);

  // The Prometheus text exposition format (version 0.0.4): per family a HELP and a TYPE
  // line, then its series, in the order they were added.
  std::string Render() const;

 private:
  struct Family;
  struct Series;
  Family* FamilyFor(std::string_view name, std::string_view help, int type,
                    const std::vector<double>* bounds);  // requires mutex_
  Series* SeriesFor(Family* family, const MetricLabels& labels);   // requires mutex_

  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<Family>> families_;  // GUARDED_BY(mutex_)
};

// Text-format helpers, exposed for tests and for other exporters.
bool IsValidMetricName(std::string_view name);
bool IsValidLabelName(std::string_view name);
std::string EscapeLabelValue(std::string_view value);  // \ → \\, " → \", newline → \n
std::string EscapeHelp(std::string_view help);          // \ → \\, newline → \n
std::string FormatMetricValue(double value);            // NaN, +Inf, -Inf, shortest exact

}  // namespace mtps
