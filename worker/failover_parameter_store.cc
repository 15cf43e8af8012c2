// FailoverParameterStore: requests sent through the current ps::Client, held while a
// server is lost, retried or dropped as the header says when one fails under them.
#include "worker/failover_parameter_store.h"

#include <glog/logging.h>

#include <algorithm>

namespace mtps {

namespace {

using SteadyClock = std::chrono::steady_clock;

bool AllLive(const std::vector<std::string>& servers) {
  return std::none_of(servers.begin(), servers.end(), [](const std::string& s) { return s.empty(); });
}

}  // namespace

FailoverParameterStore::FailoverParameterStore(FailoverOptions options) : options_(std::move(options)) {}

StatusOr<std::unique_ptr<FailoverParameterStore>> FailoverParameterStore::Create(
    std::vector<std::string> servers, FailoverOptions options) {
  std::unique_ptr<FailoverParameterStore> store(new FailoverParameterStore(std::move(options)));
  if (!AllLive(servers)) return InvalidArgument("a server of the first view has no address");
  MTPS_ASSIGN_OR_RETURN(auto client, ps::Client::Connect(servers, store->options_.client));
  store->client_ = std::shared_ptr<ps::Client>(std::move(client));
  store->servers_ = std::move(servers);
  store->holder_ = std::thread([s = store.get()] { s->HoldLoop(); });
  return store;
}

FailoverParameterStore::~FailoverParameterStore() {
  Stop(Cancelled("the parameter store is closing"));
  if (holder_.joinable()) holder_.join();
  std::shared_ptr<ps::Client> client;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    client = std::move(client_);
  }
  client.reset();  // requests in flight end here, through OnDone, while `this` is whole
}

bool FailoverParameterStore::Retryable(const Status& status) {
  // What a dead or replaced server looks like from here; refusals are answers, not losses.
  return status.code() == StatusCode::kUnavailable ||
         status.code() == StatusCode::kDeadlineExceeded || status.code() == StatusCode::kCancelled;
}

void FailoverParameterStore::UpdateView(const std::vector<std::string>& servers) {
  std::shared_ptr<ps::Client> old;
  std::vector<OwnedBlock> dense_init;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopped_ || servers == servers_) return;
    dense_init = dense_init_;
    old = std::move(client_);  // requests wait (held) from now on
    servers_ = servers;
    ++view_;
    changed_.notify_all();
  }
  std::shared_ptr<ps::Client> fresh;
  if (AllLive(servers)) {
    StatusOr<std::unique_ptr<ps::Client>> client = ps::Client::Connect(servers, options_.client);
    if (client.ok()) {
      fresh = std::shared_ptr<ps::Client>(std::move(*client));
      // A replacement that found no checkpoint starts without dense blocks: create the
      // missing ones as at the start (present ones are kept).
      std::vector<DenseBlockIn> blocks;
      for (const OwnedBlock& b : dense_init) blocks.push_back({b.id, b.name, b.values});
      if (Status s = blocks.empty() ? Status::OK() : fresh->DenseInit(blocks); !s.ok()) {
        LOG(WARNING) << "parameter store: dense init on the new view failed: " << s;
      }
    } else {
      LOG(ERROR) << "parameter store: cannot connect to the servers of the new view: "
                 << client.status();
    }
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (servers_ == servers) client_ = fresh;  // unless a newer view came meanwhile
    changed_.notify_all();
  }
  LOG(WARNING) << "parameter store: new server view"
               << (current() ? ": every server live, held requests go out now"
                             : ": a server is lost, requests to the servers are held");
  old.reset();  // requests in flight on the old client fail now and are retried or dropped
}

void FailoverParameterStore::Stop(const Status& reason) {
  std::shared_ptr<ps::Client> client;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!stopped_) stopped_ = reason;
    client = client_;
    changed_.notify_all();
  }
  // The job ended: the servers are stopping and will not answer what is in flight, so
  // the trainer must not wait out each request's timeout (10 s, or a sync step's longer one).
  if (client) client->CancelAll(reason);
}

std::shared_ptr<ps::Client> FailoverParameterStore::current() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return client_;
}

std::future<Status> FailoverParameterStore::Submit(std::shared_ptr<Op> op) {
  std::future<Status> done = op->promise.get_future();
  Issue(std::move(op));
  return done;
}

void FailoverParameterStore::Issue(std::shared_ptr<Op> op) {
  std::shared_ptr<ps::Client> client;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopped_) return op->promise.set_value(*stopped_);
    if (!client_) {
      if (!op->first_failure) op->first_failure = SteadyClock::now();
      held_.push_back(std::move(op));
      changed_.notify_all();
      return;
    }
    client = client_;
    op->view = view_;
  }
  op->attempt(*client, [this, op](Status status) { OnDone(op, std::move(status)); });
}

void FailoverParameterStore::OnDone(const std::shared_ptr<Op>& op, Status status) {
  if (status.ok() || !Retryable(status)) return op->promise.set_value(std::move(status));
  if (!op->retry_in_flight) {
    const uint64_t dropped = dropped_pushes_.fetch_add(1) + 1;
    LOG_IF(WARNING, dropped == 1 || dropped % 100 == 0)
        << "parameter store: " << dropped << " pushes dropped on a lost server (latest: "
        << status << ")";
    return op->promise.set_value(Status::OK());
  }
  std::lock_guard<std::mutex> lock(mutex_);
  if (stopped_) return op->promise.set_value(*stopped_);
  const auto now = SteadyClock::now();
  if (!op->first_failure) op->first_failure = now;
  ++op->failures;
  held_.push_back(op);
  changed_.notify_all();
}

void FailoverParameterStore::HoldLoop() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    if (stopped_) {
      for (auto& op : held_) op->promise.set_value(*stopped_);
      held_.clear();
      return;
    }
    if (held_.empty()) {
      changed_.wait(lock);
      continue;
    }
    const auto now = SteadyClock::now();
    std::vector<std::shared_ptr<Op>> ready;
    auto next = now + options_.max_backoff;
    for (auto it = held_.begin(); it != held_.end();) {
      std::shared_ptr<Op>& op = *it;
      if (now - *op->first_failure > options_.hold_timeout) {
        op->promise.set_value(DeadlineExceeded(
            "no live parameter server for this request within the hold timeout (" +
            std::to_string(options_.hold_timeout.count()) + " ms, " +
            std::to_string(op->failures) + " failed attempts)"));
        it = held_.erase(it);
        continue;
      }
      // Sent under an older view (or never sent): at once; else after its backoff.
      const int shift = std::min(op->failures, 16);
      const auto backoff = std::min(options_.first_backoff * (1 << shift), options_.max_backoff);
      const auto due = op->view != view_ || op->failures == 0 ? now : *op->first_failure + backoff;
      if (client_ && due <= now) {
        ready.push_back(std::move(op));
        it = held_.erase(it);
      } else {
        next = std::min(next, due);
        ++it;
      }
    }
    if (ready.empty()) {
      // A view change or Stop() wakes us; the timeout bounds the hold and the backoff.
      changed_.wait_until(lock, std::max(next, now + std::chrono::milliseconds(10)));
      continue;
    }
    lock.unlock();
    for (auto& op : ready) Issue(std::move(op));
    lock.lock();
  }
}

// ---- the requests ----

std::future<Status> FailoverParameterStore::PullRows(uint32_t table_id,
                                                     std::span<const uint64_t> keys, int dim,
                                                     float* out, const PullOptions& options) {
  auto op = std::make_shared<Op>();
  // The keys may be reused once this returns; a retry needs them.
  op->attempt = [table_id, keys = std::vector<uint64_t>(keys.begin(), keys.end()), dim, out,
                 options](ps::Client& client, std::function<void(Status)> done) {
    client.PullAsync(table_id, keys, dim, out, options, std::move(done));
  };
  return Submit(std::move(op));
}

std::future<Status> FailoverParameterStore::PushRows(uint32_t table_id,
                                                     std::span<const uint64_t> keys, int dim,
                                                     const float* gradients,
                                                     const PushOptions& options) {
  auto send = [table_id, dim](ps::Client& c, std::span<const uint64_t> k, const float* g,
                              const PushOptions& o, std::function<void(Status)> done) {
    c.PushAsync(table_id, k, dim, g, o, [done = std::move(done)](StatusOr<ps::PushResult> r) {
      done(r.ok() ? Status::OK() : r.status());
    });
  };
  auto op = std::make_shared<Op>();
  std::future<Status> done = op->promise.get_future();
  if (options.sync) {
    // A sync step waits for every server. A push that meets a lost server, or loses its
    // answer when the view changes, goes again once every server is live, as a later
    // attempt (each server's step gate keeps the latest part of a rank). It reads the
    // caller's buffers in place: they stay valid until the future is ready (ParameterStore).
    auto attempts = std::make_shared<std::atomic<uint32_t>>(0);
    op->attempt = [send, keys, gradients, options, attempts](ps::Client& c, std::function<void(Status)> done) {
      PushOptions o = options;
      o.attempt = attempts->fetch_add(1);
      send(c, keys, gradients, o, std::move(done));
    };
    Issue(std::move(op));
    return done;
  }
  op->retry_in_flight = false;
  if (std::shared_ptr<ps::Client> client = current()) {
    // The common case: no copy, the caller's buffers are read before PushAsync returns.
    send(*client, keys, gradients, options, [this, op](Status s) { OnDone(op, std::move(s)); });
    return done;
  }
  // A server is lost: hold a copy until it is back.
  auto copy_keys = std::make_shared<std::vector<uint64_t>>(keys.begin(), keys.end());
  auto copy_grads = std::make_shared<std::vector<float>>(gradients, gradients + keys.size() * dim);
  op->attempt = [send, copy_keys, copy_grads, options](ps::Client& c, std::function<void(Status)> done) {
    send(c, *copy_keys, copy_grads->data(), options, std::move(done));
  };
  Issue(std::move(op));
  return done;
}

Status FailoverParameterStore::InitDense(std::span<const DenseBlockIn> blocks) {
  auto owned = std::make_shared<std::vector<OwnedBlock>>();
  for (const DenseBlockIn& b : blocks) {
    owned->push_back({b.id, std::string(b.name), std::vector<float>(b.values.begin(), b.values.end())});
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    dense_init_.insert(dense_init_.end(), owned->begin(), owned->end());
  }
  auto op = std::make_shared<Op>();
  op->attempt = [owned](ps::Client& client, std::function<void(Status)> done) {
    std::vector<DenseBlockIn> in;
    for (const OwnedBlock& o : *owned) in.push_back({o.id, o.name, o.values});
    done(client.DenseInit(in));
  };
  return Submit(std::move(op)).get();
}

std::future<Status> FailoverParameterStore::PullDense(std::span<const DenseBlockOut> blocks) {
  auto op = std::make_shared<Op>();
  // Retries run on the holding thread and may block there (only while recovering).
  op->attempt = [blocks = std::vector<DenseBlockOut>(blocks.begin(), blocks.end())](
                    ps::Client& client, std::function<void(Status)> done) {
    done(client.DensePull(blocks));
  };
  std::shared_ptr<ps::Client> client = current();
  if (!client) return Submit(std::move(op));
  std::future<Status> pulled = client->DensePullAsync(blocks);
  // Deferred: runs in the thread that waits; a lost server turns into a held retry there.
  return std::async(std::launch::deferred, [this, op, pulled = std::move(pulled)]() mutable {
    Status s = pulled.get();
    if (s.ok() || !Retryable(s)) return s;
    op->first_failure = SteadyClock::now();
    op->failures = 1;
    op->view = ~uint64_t{0};  // sent again at once under the next view
    return Submit(op).get();
  });
}

std::future<Status> FailoverParameterStore::PushDense(std::span<const DenseBlockIn> gradients,
                                                      const PushOptions& options) {
  std::shared_ptr<ps::Client> client = current();
  if (!options.sync && client) {
    std::future<StatusOr<ps::PushResult>> pushed = client->DensePushAsync(gradients, options);
    return std::async(std::launch::deferred, [this, pushed = std::move(pushed)]() mutable {
      StatusOr<ps::PushResult> result = pushed.get();
      if (result.ok()) return Status::OK();
      if (!Retryable(result.status())) return result.status();
      const uint64_t dropped = dropped_pushes_.fetch_add(1) + 1;
      LOG_IF(WARNING, dropped == 1 || dropped % 100 == 0)
          << "parameter store: " << dropped << " pushes dropped on a lost server (latest: "
          << result.status() << ")";
      return Status::OK();
    });
  }
  auto op = std::make_shared<Op>();
  op->retry_in_flight = options.sync;
  auto attempts = std::make_shared<std::atomic<uint32_t>>(0);
  if (options.sync) {
    // Sent again as a later attempt after a lost server, as in PushRows, from the caller's
    // buffers (valid until the future is ready). Retries run on the holding thread and may
    // block there (only while recovering).
    op->attempt = [blocks = std::vector<DenseBlockIn>(gradients.begin(), gradients.end()), options,
                   attempts](ps::Client& client, std::function<void(Status)> done) {
      PushOptions o = options;
      o.attempt = attempts->fetch_add(1);
      StatusOr<ps::PushResult> r = client.DensePush(blocks, o);
      done(r.ok() ? Status::OK() : r.status());
    };
  } else {
    // An async push while a server is lost: held, with a copy, until it is back.
    struct Owned {
      uint32_t id;
      std::vector<float> values;
    };
    auto owned = std::make_shared<std::vector<Owned>>();
    for (const DenseBlockIn& g : gradients) {
      owned->push_back({g.id, std::vector<float>(g.values.begin(), g.values.end())});
    }
    op->attempt = [owned, options](ps::Client& client, std::function<void(Status)> done) {
      std::vector<DenseBlockIn> in;
      for (const Owned& o : *owned) in.push_back({o.id, {}, o.values});
      StatusOr<ps::PushResult> r = client.DensePush(in, options);
      done(r.ok() ? Status::OK() : r.status());
    };
  }
  if (!client) return Submit(std::move(op));
  // Sync with every server live: the first send does not block the caller.
  PushOptions first = options;
  first.attempt = attempts->fetch_add(1);
  std::future<StatusOr<ps::PushResult>> pushed = client->DensePushAsync(gradients, first);
  return std::async(std::launch::deferred, [this, op, pushed = std::move(pushed)]() mutable {
    StatusOr<ps::PushResult> result = pushed.get();
    if (result.ok()) return Status::OK();
    if (!Retryable(result.status())) return result.status();
    op->first_failure = SteadyClock::now();
    op->failures = 1;
    op->view = ~uint64_t{0};  // sent again at once under the next view
    return Submit(op).get();
  });
}

}  // namespace mtps
