// Cost of the metric updates that sit on request hot paths (counter increment, histogram
// observation, alone and contended), and of rendering /metrics.
#include <benchmark/benchmark.h>

#include "protocol/metrics.h"

namespace mtps {
namespace {

MetricsRegistry& Registry() {
  // One registry shared by the threads of a multi-threaded run (benchmark's threads run
  // the same function); built once, before any timing.
  static MetricsRegistry* registry = [] {
    auto* r = new MetricsRegistry;
    for (int i = 0; i < 20; ++i) {
      const std::string kind = "kind" + std::to_string(i);
      r->AddCounter("bench_requests_total", "Requests.", {{"kind", kind}})->Increment(i);
      r->AddHistogram("bench_request_seconds", "Latency.", LatencyBuckets(), {{"kind", kind}})
          ->Observe(1e-3 * i);
    }
    return r;
  }();
  return *registry;
}

void BM_CounterIncrement(benchmark::State& state) {
  Counter* counter = Registry().AddCounter("bench_hot_total", "Hot counter.");
  for (auto _ : state) counter->Increment();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CounterIncrement)->Threads(1)->Threads(2);

void BM_HistogramObserve(benchmark::State& state) {
  Histogram* h = Registry().AddHistogram("bench_hot_seconds", "Hot histogram.", LatencyBuckets());
  double v = 1e-5;
  for (auto _ : state) {
    h->Observe(v);
    v = v < 10 ? v * 1.37 : 1e-5;  // walk through the buckets
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_HistogramObserve)->Threads(1)->Threads(2);

void BM_Render(benchmark::State& state) {
  MetricsRegistry& r = Registry();
  size_t bytes = 0;
  for (auto _ : state) {
    std::string text = r.Render();
    bytes = text.size();
    benchmark::DoNotOptimize(text);
  }
  state.counters["bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_Render);

}  // namespace
}  // namespace mtps

BENCHMARK_MAIN();
