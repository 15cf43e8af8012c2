// Tests of the Prometheus metrics registry: the exposition format line by line, label and
// help escaping, histogram buckets, exact totals under concurrent updates, misuse.
#include "protocol/metrics.h"

#include <cmath>
#include <limits>
#include <regex>
#include <sstream>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace mtps {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(MetricsRegistryTest, EmptyRegistryRendersNothing) {
  MetricsRegistry registry;
  EXPECT_EQ(registry.Render(), "");
}

TEST(MetricsRegistryTest, CounterWithLabelsRendersHelpTypeAndSeries) {
  MetricsRegistry registry;
  Counter* pulls = registry.AddCounter("mtps_requests_total", "Requests served.",
                                       {{"kind", "sparse_pull"}});
  Counter* pushes = registry.AddCounter("mtps_requests_total", "Requests served.",
                                        {{"kind", "sparse_push"}});
  pulls->Increment();
  pulls->Increment(41);
  pushes->Increment(7);
  EXPECT_THAT(Lines(registry.Render()),
              ElementsAre("# HELP mtps_requests_total Requests served.",
                          "# TYPE mtps_requests_total counter",
                          "mtps_requests_total{kind=\"sparse_pull\"} 42",
                          "mtps_requests_total{kind=\"sparse_push\"} 7"));
}

TEST(MetricsRegistryTest, SameNameAndLabelsGiveTheSameSeries) {
  MetricsRegistry registry;
  Counter* a = registry.AddCounter("c_total", "h", {{"x", "1"}});
  Counter* b = registry.AddCounter("c_total", "h", {{"x", "1"}});
  Counter* c = registry.AddCounter("c_total", "h", {{"x", "2"}});
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

TEST(MetricsRegistryTest, UnlabelledGaugeAndSpecialValues) {
  MetricsRegistry registry;
  Gauge* g = registry.AddGauge("mtps_rows", "Rows held.");
  g->Set(1.5);
  g->Add(2.25);
  EXPECT_THAT(Lines(registry.Render()),
              ElementsAre("# HELP mtps_rows Rows held.", "# TYPE mtps_rows gauge", "mtps_rows 3.75"));
  g->Set(std::numeric_limits<double>::quiet_NaN());
  EXPECT_THAT(registry.Render(), HasSubstr("\nmtps_rows NaN\n"));
  g->Set(std::numeric_limits<double>::infinity());
  EXPECT_THAT(registry.Render(), HasSubstr("\nmtps_rows +Inf\n"));
  g->Set(-std::numeric_limits<double>::infinity());
  EXPECT_THAT(registry.Render(), HasSubstr("\nmtps_rows -Inf\n"));
  g->Set(1e-7);
  EXPECT_THAT(registry.Render(), HasSubstr("\nmtps_rows 1e-07\n"));
}

TEST(MetricsRegistryTest, LabelValuesAndHelpAreEscaped) {
  MetricsRegistry registry;
  registry.AddCounter("c_total", "line one\nback\\slash \"quotes\" stay",
                      {{"path", "a\"b\\c\nd"}, {"z", ""}})->Increment();
  EXPECT_THAT(Lines(registry.Render()),
              ElementsAre("# HELP c_total line one\\nback\\\\slash \"quotes\" stay",
                          "# TYPE c_total counter",
                          "c_total{path=\"a\\\"b\\\\c\\nd\",z=\"\"} 1"));
}

TEST(MetricsRegistryTest, HistogramBucketsAreCumulativeAndInclusive) {
  MetricsRegistry registry;
  Histogram* h = registry.AddHistogram("lat_seconds", "Latency.", {0.25, 1, 10}, {{"kind", "pull"}});
  // Binary fractions, so the sum is exact.
  for (double v : {0.125, 0.25, 0.5, 1.0, 5.0, 100.0}) h->Observe(v);
  EXPECT_THAT(Lines(registry.Render()),
              ElementsAre("# HELP lat_seconds Latency.", "# TYPE lat_seconds histogram",
                          "lat_seconds_bucket{kind=\"pull\",le=\"0.25\"} 2",
                          "lat_seconds_bucket{kind=\"pull\",le=\"1\"} 4",
                          "lat_seconds_bucket{kind=\"pull\",le=\"10\"} 5",
                          "lat_seconds_bucket{kind=\"pull\",le=\"+Inf\"} 6",
                          "lat_seconds_sum{kind=\"pull\"} 106.875",
                          "lat_seconds_count{kind=\"pull\"} 6"));
}

TEST(MetricsRegistryTest, UnlabelledHistogramHasOnlyLe) {
  MetricsRegistry registry;
  registry.AddHistogram("h", "x", {1})->Observe(2);
  EXPECT_THAT(Lines(registry.Render()),
              ElementsAre("# HELP h x", "# TYPE h histogram", "h_bucket{le=\"1\"} 0",
                          "h_bucket{le=\"+Inf\"} 1", "h_sum 2", "h_count 1"));
}

TEST(MetricsRegistryTest, NanObservationLandsInInfBucket) {
  Histogram h({1.0, 2.0});
  h.Observe(std::numeric_limits<double>::quiet_NaN());
  EXPECT_EQ(h.bucket_count(0), 0u);
  EXPECT_EQ(h.bucket_count(1), 0u);
  EXPECT_EQ(h.bucket_count(2), 1u);
  EXPECT_EQ(h.count(), 1u);
}

TEST(MetricsRegistryTest, GaugeFunctionIsReadAtEachScrape) {
  MetricsRegistry registry;
  double rows = 10;
  registry.AddGaugeFunction("mtps_table_rows", "Rows.", {{"table", "user"}}, [&] { return rows; });
  EXPECT_THAT(registry.Render(), HasSubstr("mtps_table_rows{table=\"user\"} 10\n"));
  rows = 12;
  EXPECT_THAT(registry.Render(), HasSubstr("mtps_table_rows{table=\"user\"} 12\n"));
}

TEST(MetricsRegistryTest, FamiliesRenderInRegistrationOrderAndEveryLineIsWellFormed) {
  MetricsRegistry registry;
  registry.AddGauge("b_gauge", "B.")->Set(-3);
  registry.AddCounter("a_total", "A.", {{"role", "server"}, {"rank", "0"}})->Increment();
  registry.AddHistogram("c_seconds", "C.", LatencyBuckets(), {{"kind", "x"}})->Observe(0.003);
  const std::string text = registry.Render();
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  const std::regex help(R"(# HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*)");
  const std::regex type(R"(# TYPE [a-zA-Z_:][a-zA-Z0-9_:]* (counter|gauge|histogram))");
  const std::regex sample(
      R"([a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? )"
      R"((NaN|[+-]Inf|-?[0-9.e+-]+))");
  std::vector<std::string> family_order;
  for (const std::string& line : Lines(text)) {
    if (line.starts_with("# HELP")) {
      EXPECT_TRUE(std::regex_match(line, help)) << line;
      family_order.push_back(line.substr(7, line.find(' ', 7) - 7));
    } else if (line.starts_with("# TYPE")) {
      EXPECT_TRUE(std::regex_match(line, type)) << line;
    } else {
      EXPECT_TRUE(std::regex_match(line, sample)) << line;
    }
  }
  EXPECT_THAT(family_order, ElementsAre("b_gauge", "a_total", "c_seconds"));
  EXPECT_THAT(text, HasSubstr("a_total{role=\"server\",rank=\"0\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("c_seconds_count{kind=\"x\"} 1\n"));
}

TEST(MetricsRegistryTest, ConcurrentIncrementsGiveTheExactTotal) {
  MetricsRegistry registry;
  Counter* counter = registry.AddCounter("c_total", "c");
  Gauge* gauge = registry.AddGauge("g", "g");
  Histogram* hist = registry.AddHistogram("h", "h", {0.5, 1.5, 2.5});
  constexpr int kThreads = 8;
  constexpr int kPerThread = 100000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        counter->Increment();
        gauge->Add(1.0);
        hist->Observe(static_cast<double>((t + i) % 3));  // 0, 1 or 2: exact sums in double
      }
    });
  }
  // Scrapes that race with the updates must not disturb them.
  for (int i = 0; i < 20; ++i) (void)registry.Render();
  for (auto& t : threads) t.join();
  EXPECT_EQ(counter->value(), uint64_t{kThreads} * kPerThread);
  EXPECT_EQ(gauge->value(), double{kThreads} * kPerThread);
  EXPECT_EQ(hist->count(), uint64_t{kThreads} * kPerThread);
  uint64_t expected_sum = 0;
  uint64_t per_bucket[3] = {0, 0, 0};
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) {
      expected_sum += (t + i) % 3;
      ++per_bucket[(t + i) % 3];
    }
  }
  EXPECT_EQ(hist->sum(), static_cast<double>(expected_sum));
  for (int b = 0; b < 3; ++b) EXPECT_EQ(hist->bucket_count(b), per_bucket[b]) << "bucket " << b;
  EXPECT_EQ(hist->bucket_count(3), 0u);
}

TEST(MetricsHelpersTest, NameValidation) {
  EXPECT_TRUE(IsValidMetricName("mtps_requests_total"));
  EXPECT_TRUE(IsValidMetricName("job:rate5m"));
  EXPECT_FALSE(IsValidMetricName(""));
  EXPECT_FALSE(IsValidMetricName("9lives"));
  EXPECT_FALSE(IsValidMetricName("bad-name"));
  EXPECT_TRUE(IsValidLabelName("kind"));
  EXPECT_FALSE(IsValidLabelName("__reserved"));
  EXPECT_FALSE(IsValidLabelName("a:b"));
  EXPECT_FALSE(IsValidLabelName(""));
}

TEST(MetricsHelpersTest, ExponentialBuckets) {
  EXPECT_THAT(ExponentialBuckets(1, 2, 4), ElementsAre(1, 2, 4, 8));
  std::vector<double> latency = LatencyBuckets();
  EXPECT_DOUBLE_EQ(latency.front(), 50e-6);
  EXPECT_GT(latency.back(), 10.0);
}

TEST(MetricsRegistryDeathTest, MisuseAbortsNamingTheMetric) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  MetricsRegistry registry;
  registry.AddCounter("used_total", "x");
  EXPECT_DEATH(registry.AddCounter("bad-name", "x"), "invalid Prometheus metric name 'bad-name'");
  EXPECT_DEATH(registry.AddGauge("used_total", "x"),
               "metric 'used_total' registered as a counter and again as a gauge");
  EXPECT_DEATH(registry.AddCounter("c_total", "x", {{"bad label", "v"}}),
               "invalid label name 'bad label'");
  EXPECT_DEATH(registry.AddHistogram("h", "x", {2, 1}), "bounds must increase, got 2 then 1");
  EXPECT_DEATH(registry.AddHistogram("h2", "x", {1}, {{"le", "1"}}), "the label 'le' is reserved");
}

}  // namespace
}  // namespace mtps
