// The metrics registry: lock-free metric updates, and rendering of the Prometheus text
// exposition format.
#include "protocol/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include <glog/logging.h>

namespace mtps {

namespace {

enum MetricType { kCounter = 0, kGauge = 1, kHistogram = 2 };

const char* TypeName(int type) {
  switch (type) {
    case kCounter: return "counter";
    case kGauge: return "gauge";
    case kHistogram: return "histogram";
  }
  return "untyped";
}

bool IsNameStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// {a="x",b="y"} with `extra` appended (a histogram's `le`); empty when there are none.
std::string RenderLabels(const MetricLabels& labels, std::string_view extra_name = {},
                         std::string_view extra_value = {}) {
  if (labels.empty() && extra_name.empty()) return {};
  std::string out = "{";
  bool first = true;
  for (const auto& [name, value] : labels) {
    if (!first) out += ',';
    first = false;
    out += name;
    out += "=\"";
    out += EscapeLabelValue(value);
    out += '"';
  }
  if (!extra_name.empty()) {
    if (!first) out += ',';
    out += extra_name;
    out += "=\"";
    out += extra_value;
    out += '"';
  }
  out += '}';
  return out;
}

}  // namespace

bool IsValidMetricName(std::string_view name) {
  if (name.empty() || !(IsNameStart(name[0]) || name[0] == ':')) return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return IsNameStart(c) || IsDigit(c) || c == ':'; });
}

bool IsValidLabelName(std::string_view name) {
  if (name.empty() || !IsNameStart(name[0])) return false;
  if (name.starts_with("__")) return false;  // reserved for Prometheus itself
  return std::all_of(name.begin(), name.end(), [](char c) { return IsNameStart(c) || IsDigit(c); });
}

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string EscapeHelp(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string FormatMetricValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
  CHECK(ec == std::errc()) << "to_chars failed for a double";
  return std::string(buf, end);
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(new Slot[bounds_.size() + 1]) {}

void Histogram::Observe(double value) {
  // `le` is inclusive: the first bound >= value. NaN compares false with every bound, so
  // it is sent to +Inf explicitly (lower_bound would put it in the first bucket).
  size_t i = std::isnan(value)
                 ? bounds_.size()
                 : std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  counts_[i].value.fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
}

uint64_t Histogram::count() const {
  uint64_t total = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) total += bucket_count(i);
  return total;
}

std::vector<double> ExponentialBuckets(double start, double factor, int count) {
  CHECK(start > 0 && factor > 1 && count > 0)
      << "ExponentialBuckets(start=" << start << ", factor=" << factor << ", count=" << count << ")";
  std::vector<double> bounds;
  bounds.reserve(count);
  for (int i = 0; i < count; ++i, start *= factor) bounds.push_back(start);
  return bounds;
}

std::vector<double> LatencyBuckets() { return ExponentialBuckets(50e-6, 2.0, 19); }

struct MetricsRegistry::Series {
  MetricLabels labels;
  std::unique_ptr<Counter> counter;
  std::unique_ptr<Gauge> gauge;
  std::unique_ptr<Histogram> histogram;
  std::function<double()> read;  // gauge function
};

struct MetricsRegistry::Family {
  std::string name;
  std::string help;
  int type;
  std::vector<double> bounds;  // histograms
  std::vector<std::unique_ptr<Series>> series;
};

MetricsRegistry::MetricsRegistry() = default;
MetricsRegistry::~MetricsRegistry() = default;

MetricsRegistry::Family* MetricsRegistry::FamilyFor(std::string_view name, std::string_view help,
                                                    int type, const std::vector<double>* bounds) {
  CHECK(IsValidMetricName(name)) << "invalid Prometheus metric name '" << name << "'";
  for (auto& family : families_) {
    if (family->name != name) continue;
    CHECK_EQ(family->type, type) << "metric '" << name << "' registered as a "
                                 << TypeName(family->type) << " and again as a " << TypeName(type);
    CHECK(bounds == nullptr || family->bounds == *bounds)
        << "histogram '" << name << "' registered again with other bucket bounds";
    return family.get();
  }
  auto family = std::make_unique<Family>();
  family->name = std::string(name);
  family->help = std::string(help);
  family->type = type;
  if (bounds != nullptr) family->bounds = *bounds;
  families_.push_back(std::move(family));
  return families_.back().get();
}

MetricsRegistry::Series* MetricsRegistry::SeriesFor(Family* family, const MetricLabels& labels) {
  for (size_t i = 0; i < labels.size(); ++i) {
    CHECK(IsValidLabelName(labels[i].first))
        << "metric '" << family->name << "': invalid label name '" << labels[i].first << "'";
    CHECK(!(family->type == kHistogram && labels[i].first == "le"))
        << "histogram '" << family->name << "': the label 'le' is reserved";
    for (size_t j = 0; j < i; ++j) {
      CHECK(labels[j].first != labels[i].first)
          << "metric '" << family->name << "': label '" << labels[i].first << "' given twice";
    }
  }
  for (auto& series : family->series) {
    if (series->labels == labels) return series.get();
  }
  auto series = std::make_unique<Series>();
  series->labels = labels;
  family->series.push_back(std::move(series));
  return family->series.back().get();
}

Counter* MetricsRegistry::AddCounter(std::string_view name, std::string_view help,
                                     const MetricLabels& labels) {
  std::lock_guard<std::mutex> lock(mutex_);
  Series* series = SeriesFor(FamilyFor(name, help, kCounter, nullptr), labels);
  if (!series->counter) series->counter = std::make_unique<Counter>();
  return series->counter.get();
}

Gauge* MetricsRegistry::AddGauge(std::string_view name, std::string_view help,
                                 const MetricLabels& labels) {
  std::lock_guard<std::mutex> lock(mutex_);
  Series* series = SeriesFor(FamilyFor(name, help, kGauge, nullptr), labels);
  CHECK(!series->read) << "gauge '" << name << "' with these labels is already a gauge function";
  if (!series->gauge) series->gauge = std::make_unique<Gauge>();
  return series->gauge.get();
}

void MetricsRegistry::AddGaugeFunction(std::string_view name, std::string_view help,
                                       const MetricLabels& labels, std::function<double()> read) {
  CHECK(read) << "gauge function '" << name << "' is empty";
  std::lock_guard<std::mutex> lock(mutex_);
  Series* series = SeriesFor(FamilyFor(name, help, kGauge, nullptr), labels);
  CHECK(!series->gauge) << "gauge '" << name << "' with these labels already exists";
  series->read = std::move(read);
}

void MetricsRegistry::AddCounterFunction(std::string_view name, std::string_view help,
                                         const MetricLabels& labels, std::function<double()> read) {
  CHECK(read) << "counter function '" << name << "' is empty";
  std::lock_guard<std::mutex> lock(mutex_);
  Series* series = SeriesFor(FamilyFor(name, help, kCounter, nullptr), labels);
  CHECK(!series->counter) << "counter '" << name << "' with these labels already exists";
  series->read = std::move(read);
}

Histogram* MetricsRegistry::AddHistogram(std::string_view name, std::string_view help,
                                         std::vector<double> bounds, const MetricLabels& labels) {
  CHECK(!bounds.empty()) << "histogram '" << name << "' needs at least one bucket bound";
  for (size_t i = 0; i < bounds.size(); ++i) {
    CHECK(std::isfinite(bounds[i])) << "histogram '" << name << "': bound " << i << " is not finite";
    CHECK(i == 0 || bounds[i - 1] < bounds[i])
        << "histogram '" << name << "': bounds must increase, got " << bounds[i - 1] << " then "
        << bounds[i];
  }
  std::lock_guard<std::mutex> lock(mutex_);
  Series* series = SeriesFor(FamilyFor(name, help, kHistogram, &bounds), labels);
  if (!series->histogram) series->histogram = std::make_unique<Histogram>(std::move(bounds));
  return series->histogram.get();
}

std::string MetricsRegistry::Render() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string out;
  for (const auto& family : families_) {
    out += "# HELP " + family->name + " " + EscapeHelp(family->help) + "\n";
    out += "# TYPE " + family->name + " " + TypeName(family->type) + "\n";
    for (const auto& series : family->series) {
      if (family->type == kHistogram) {
        const Histogram& h = *series->histogram;
        // Read each bucket once so the cumulative counts, +Inf and _count agree.
        uint64_t cumulative = 0;
        for (size_t i = 0; i <= h.bounds().size(); ++i) {
          cumulative += h.bucket_count(i);
          std::string le = i < h.bounds().size() ? FormatMetricValue(h.bounds()[i]) : "+Inf";
          out += family->name + "_bucket" + RenderLabels(series->labels, "le", le) + " " +
                 std::to_string(cumulative) + "\n";
        }
        std::string labels = RenderLabels(series->labels);
        out += family->name + "_sum" + labels + " " + FormatMetricValue(h.sum()) + "\n";
        out += family->name + "_count" + labels + " " + std::to_string(cumulative) + "\n";
        continue;
      }
      std::string value;
      if (series->counter) value = std::to_string(series->counter->value());
      else if (series->gauge) value = FormatMetricValue(series->gauge->value());
      else value = FormatMetricValue(series->read());
      out += family->name + RenderLabels(series->labels) + " " + value + "\n";
    }
  }
  return out;
}

}  // namespace mtps
