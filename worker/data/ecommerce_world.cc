// EcommerceWorld: builds the entities and hidden factors from the seed, calibrates the
// funnel's biases, and draws impressions as pure functions of (seed, row).
#include "worker/data/ecommerce_world.h"

#include <algorithm>
#include <cmath>

#include "worker/data/random.h"

namespace mtps {
namespace {

constexpr int kFavourites = 3;
// kInterests sequence term: session interests per impression, the share of history items
// drawn from them (the rest are unrelated), and the recency decay of a matching item.
constexpr int kSessionInterests = 3;
constexpr double kOnInterest = 0.5;
constexpr double kInterestRecency = 0.9;
constexpr int kCalibrationRows = 40000;
constexpr uint64_t kCalibrationStream = 0xCA11B4A7E0000000ULL;

double Sigmoid(double z) { return 1.0 / (1.0 + std::exp(-z)); }

// Finds b with f(b) = target for an increasing f, by bisection.
template <typename F>
double Solve(F f, double target) {
  double lo = -20, hi = 20;
  for (int i = 0; i < 80; ++i) {
    const double mid = 0.5 * (lo + hi);
    (f(mid) < target ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

}  // namespace

EcommerceWorld::Zipf::Zipf(int n, double s) : cdf_(n) {
  double sum = 0;
  for (int i = 0; i < n; ++i) cdf_[i] = (sum += 1.0 / std::pow(i + 1.0, s));
  for (double& c : cdf_) c /= sum;
}

uint32_t EcommerceWorld::Zipf::Sample(double u) const {
  const size_t i = std::upper_bound(cdf_.begin(), cdf_.end(), u) - cdf_.begin();
  return static_cast<uint32_t>(std::min(i, cdf_.size() - 1));
}

double EcommerceWorld::Dot(const float* a, const float* b) const {
  double s = 0;
  for (int j = 0; j < k_; ++j) s += static_cast<double>(a[j]) * b[j];
  return s;
}

EcommerceWorld::EcommerceWorld(const WorldOptions& options) : options_(options), k_(options.factor_dim) {
  const WorldOptions& o = options_;
  SplitMix64 rng(Mix64(o.seed));
  user_pop_ = Zipf(o.users, o.zipf_users);
  item_pop_ = Zipf(o.items, o.zipf_items);
  category_pop_ = Zipf(o.categories, o.zipf_categories);
  shop_pop_ = Zipf(o.shops, o.zipf_shops);
  const double scale = 1.0 / std::sqrt(static_cast<double>(k_));

  category_factor_.resize(static_cast<size_t>(o.categories) * k_);
  std::vector<float> category_price(o.categories);
  for (float& x : category_factor_) x = static_cast<float>(rng.Normal() * scale);
  for (float& p : category_price) p = static_cast<float>(rng.Normal() * 0.8);

  shop_quality_.resize(o.shops);
  for (float& q : shop_quality_) q = static_cast<float>(rng.Normal() * 0.4);

  item_factor_.resize(static_cast<size_t>(o.items) * k_);
  item_quality_.resize(o.items);
  item_price_.resize(o.items);
  item_category_.resize(o.items);
  item_shop_.resize(o.items);
  item_bucket_.resize(o.items);
  category_items_.assign(o.categories, {});
  for (int i = 0; i < o.items; ++i) {
    const uint32_t c = category_pop_.Sample(rng.Uniform());
    item_category_[i] = c;
    item_shop_[i] = shop_pop_.Sample(rng.Uniform());
    item_quality_[i] = static_cast<float>(rng.Normal() * 0.6);
    const double price = category_price[c] + rng.Normal() * 0.5;
    item_price_[i] = static_cast<float>(price);
    const double bucket = std::floor((price + 2.0) / 4.0 * o.price_buckets);
    item_bucket_[i] = static_cast<uint32_t>(std::clamp(bucket, 0.0, o.price_buckets - 1.0));
    for (int j = 0; j < k_; ++j) {
      item_factor_[static_cast<size_t>(i) * k_ + j] =
          static_cast<float>(0.8 * category_factor_[static_cast<size_t>(c) * k_ + j] + rng.Normal() * 0.5 * scale);
    }
    category_items_[c].push_back(static_cast<uint32_t>(i));  // ids ascend with popularity rank
  }
  category_cdf_.assign(o.categories, {});
  for (int c = 0; c < o.categories; ++c) {
    double sum = 0;
    for (uint32_t i : category_items_[c]) category_cdf_[c].push_back(sum += 1.0 / std::pow(i + 1.0, o.zipf_items));
    for (double& x : category_cdf_[c]) x /= sum;
  }

  user_factor_.resize(static_cast<size_t>(o.users) * k_);
  user_bias_.resize(o.users);
  user_sensitivity_.resize(o.users);
  user_activity_.resize(o.users);
  user_favourites_.resize(static_cast<size_t>(o.users) * kFavourites);
  user_recent_.resize(static_cast<size_t>(o.users) * o.max_recent);
  user_num_recent_.resize(o.users);
  std::vector<double> lean(k_);
  for (int u = 0; u < o.users; ++u) {
    std::fill(lean.begin(), lean.end(), 0.0);
    uint32_t* fav = &user_favourites_[static_cast<size_t>(u) * kFavourites];
    for (int f = 0; f < kFavourites; ++f) {
      fav[f] = category_pop_.Sample(rng.Uniform());
      for (int j = 0; j < k_; ++j) lean[j] += category_factor_[static_cast<size_t>(fav[f]) * k_ + j];
    }
    double norm = 0;
    for (double x : lean) norm += x * x;
    norm = std::sqrt(norm) + 1e-9;
    for (int j = 0; j < k_; ++j) {
      user_factor_[static_cast<size_t>(u) * k_ + j] = static_cast<float>(0.9 * lean[j] / norm + rng.Normal() * 0.3 * scale);
    }
    user_bias_[u] = static_cast<float>(rng.Normal() * 0.5);
    user_sensitivity_[u] = static_cast<float>(std::abs(1.0 + rng.Normal() * 0.5));
    user_activity_[u] = static_cast<float>(user_bias_[u] + rng.Normal() * 0.3);
    const int n = static_cast<int>(rng.Below(o.max_recent + 1));
    user_num_recent_[u] = static_cast<uint8_t>(n);
    for (int r = 0; r < n; ++r) {
      const uint32_t c = fav[rng.Below(kFavourites)];
      uint32_t item;
      if (category_items_[c].empty()) {
        item = item_pop_.Sample(rng.Uniform());
      } else {
        const auto& cdf = category_cdf_[c];
        const size_t at = std::min<size_t>(std::upper_bound(cdf.begin(), cdf.end(), rng.Uniform()) - cdf.begin(),
                                           cdf.size() - 1);
        item = category_items_[c][at];
      }
      user_recent_[static_cast<size_t>(u) * o.max_recent + r] = item;
    }
  }
  Calibrate();
}

uint32_t EcommerceWorld::ItemOf(uint32_t c, SplitMix64& rng) const {
  if (category_items_[c].empty()) return item_pop_.Sample(rng.Uniform());
  const auto& cdf = category_cdf_[c];
  const size_t at = std::min<size_t>(std::upper_bound(cdf.begin(), cdf.end(), rng.Uniform()) - cdf.begin(),
                                     cdf.size() - 1);
  return category_items_[c][at];
}

double EcommerceWorld::DrawHistory(uint32_t user, uint32_t intent, uint32_t target, SplitMix64& rng,
                                   Impression* out) const {
  const int n = static_cast<int>(rng.Below(options_.history_length + 1));
  out->history.clear();
  out->history_categories.clear();
  const float* t = &item_factor_[static_cast<size_t>(target) * k_];
  double weighted = 0, weights = 0;
  for (int j = 0; j < n; ++j) {
    // Older items wander over the user's favourites; recent ones follow the session.
    const double on_session = 0.2 + 0.7 * (j + 1.0) / n;
    const uint32_t c = rng.Uniform() < on_session
                           ? intent
                           : user_favourites_[static_cast<size_t>(user) * kFavourites + rng.Below(kFavourites)];
    const uint32_t item = ItemOf(c, rng);
    out->history.push_back(item);
    out->history_categories.push_back(item_category_[item]);
    const double w = std::pow(0.8, n - 1 - j);
    weighted += w * Dot(&item_factor_[static_cast<size_t>(item) * k_], t);
    weights += w;
  }
  return weights > 0 ? weighted / weights : 0.0;
}

double EcommerceWorld::DrawInterestHistory(const uint32_t* interests, uint32_t target, SplitMix64& rng,
                                           Impression* out) const {
  const int n = static_cast<int>(rng.Below(options_.history_length + 1));
  out->history.clear();
  out->history_categories.clear();
  const uint32_t wanted = item_category_[target];
  int newest_match = -1;
  for (int j = 0; j < n; ++j) {
    const uint32_t c = rng.Uniform() < kOnInterest ? interests[rng.Below(kSessionInterests)]
                                                   : category_pop_.Sample(rng.Uniform());
    const uint32_t item = ItemOf(c, rng);
    out->history.push_back(item);
    out->history_categories.push_back(item_category_[item]);
    if (item_category_[item] == wanted) newest_match = j;
  }
  return newest_match < 0 ? 0.0 : std::pow(kInterestRecency, n - 1 - newest_match);
}

void EcommerceWorld::Draw(uint64_t stream, Impression* out, Logits* logits) const {
  const WorldOptions& o = options_;
  SplitMix64 rng(stream);
  const uint32_t u = user_pop_.Sample(rng.Uniform());
  uint32_t item;
  const uint32_t c_fav = user_favourites_[static_cast<size_t>(u) * kFavourites + rng.Below(kFavourites)];
  const bool sequence = o.history_length > 0;
  const bool diverse = sequence && o.sequence_term == WorldOptions::SequenceTerm::kInterests;
  // Sequence world: this session's interests, each a favourite or any category (kSimilarity
  // has one; its draws are those of the first version, so its data sets are unchanged).
  uint32_t interests[kSessionInterests] = {};
  const int num_interests = !sequence ? 0 : diverse ? kSessionInterests : 1;
  for (int i = 0; i < num_interests; ++i) {
    interests[i] = rng.Uniform() < 0.5
                       ? user_favourites_[static_cast<size_t>(u) * kFavourites + rng.Below(kFavourites)]
                       : category_pop_.Sample(rng.Uniform());
  }
  if (sequence && rng.Uniform() < 0.35) {
    item = ItemOf(interests[diverse ? rng.Below(kSessionInterests) : 0], rng);
  } else if (rng.Uniform() < o.favourite_share && !category_items_[c_fav].empty()) {
    const auto& cdf = category_cdf_[c_fav];
    const size_t at =
        std::min<size_t>(std::upper_bound(cdf.begin(), cdf.end(), rng.Uniform()) - cdf.begin(), cdf.size() - 1);
    item = category_items_[c_fav][at];
  } else {
    item = item_pop_.Sample(rng.Uniform());
  }
  const uint32_t c = item_category_[item];
  out->user = u;
  out->item = item;
  out->category = c;
  out->shop = item_shop_[item];
  out->price_bucket = item_bucket_[item];
  out->position = static_cast<uint32_t>(rng.Below(o.positions));
  out->price = item_price_[item];
  out->user_activity = user_activity_[u];
  out->recent = &user_recent_[static_cast<size_t>(u) * o.max_recent];
  out->num_recent = user_num_recent_[u];

  const float* uf = &user_factor_[static_cast<size_t>(u) * k_];
  logits->match = Dot(uf, &item_factor_[static_cast<size_t>(item) * k_]);
  logits->affinity = Dot(uf, &category_factor_[static_cast<size_t>(c) * k_]);
  const double price_term = user_sensitivity_[u] * item_price_[item];
  // Main effects (item quality, user bias, position) carry most of the signal, so a model
  // that sees the ids and dense features can approach the oracle with ~200k records.
  logits->click = 0.8 * logits->match + 0.5 * logits->affinity + 1.2 * item_quality_[item] + 0.8 * user_bias_[u] -
                  0.15 * out->position - 0.2 * price_term;
  if (sequence) {
    logits->click += o.sequence_weight * (diverse ? DrawInterestHistory(interests, item, rng, out)
                                                  : DrawHistory(u, interests[0], item, rng, out));
  }
  logits->buy = 1.2 * logits->affinity - 0.8 * price_term + shop_quality_[out->shop] + 0.5 * item_quality_[item];
  // The label draws come last so that calibration and sampling see the same features.
  out->p_click = Sigmoid(click_bias_ + logits->click);
  out->p_buy = Sigmoid(buy_bias_ + logits->buy);
  out->click = rng.Uniform() < out->p_click;
  const bool buy = rng.Uniform() < out->p_buy;
  out->purchase = out->click && buy;
  out->rating_mean = static_cast<float>(3.0 + 1.2 * std::tanh(logits->match + logits->affinity) +
                                        0.5 * item_quality_[item]);
  out->rating = static_cast<float>(out->rating_mean + rng.Normal() * o.rating_noise);
}

void EcommerceWorld::Sample(uint64_t row, Impression* out) const {
  Logits logits;
  Draw(Mix64(options_.seed ^ Mix64(row)), out, &logits);
}

void EcommerceWorld::Calibrate() {
  std::vector<double> click(kCalibrationRows), buy(kCalibrationRows);
  Impression imp;
  Logits logits;
  for (int i = 0; i < kCalibrationRows; ++i) {
    Draw(Mix64(options_.seed ^ kCalibrationStream ^ Mix64(i)), &imp, &logits);
    click[i] = logits.click;
    buy[i] = logits.buy;
  }
  click_bias_ = Solve(
      [&](double b) {
        double s = 0;
        for (double z : click) s += Sigmoid(b + z);
        return s / kCalibrationRows;
      },
      options_.ctr);
  buy_bias_ = Solve(
      [&](double b) {
        double num = 0, den = 0;
        for (int i = 0; i < kCalibrationRows; ++i) {
          const double pc = Sigmoid(click_bias_ + click[i]);
          num += pc * Sigmoid(b + buy[i]);
          den += pc;
        }
        return num / den;
      },
      options_.conversion);
}

}  // namespace mtps
