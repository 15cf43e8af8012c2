// EcommerceWorld: the synthetic shop behind mtps-datagen — users, items, categories, shops
// and price buckets with Zipf popularity, hidden user/item/category factors, and an
// impression -> click -> purchase funnel whose true probabilities are known.
//
//   EcommerceWorld world(WorldOptions{.seed = 7});
//   Impression imp;
//   world.Sample(row, &imp);      // a pure function of (seed, row): any order, any thread
//   // imp.p_click, imp.p_buy: the truth; imp.click, imp.purchase: the drawn labels
//
// The hidden model: a user's factor leans towards three favourite categories; an item's
// factor towards its category. P(click) = sigmoid(b0 + 0.8 user.item + 0.5 user.category +
// 1.2 item quality + 0.8 user bias - 0.15 position - 0.2 sensitivity * price); P(buy | click) =
// sigmoid(g0 + 1.2 user.category - 0.8 sensitivity * price + shop quality + 0.5 item
// quality); purchase = click AND buy, so CTR and purchase labels correlate as in real
// logs. b0 and g0 are calibrated at construction so that the mean P(click) is `ctr` and
// the click-weighted mean P(buy | click) is `conversion`. The optional rating is
// 3 + 1.2 tanh(user.item + user.category) + 0.5 item quality + N(0, rating_noise^2).
// The sequence world (history_length > 0) gives every impression its own behaviour history
// (see Impression::history), with one of two sequence terms in P(click):
// - kInterests (default; DIN's "diverse interests"): each impression has three session
//   interests (categories; a favourite or any category by popularity); history items come
//   from a random one of them with probability 0.5, otherwise from any category (unrelated
//   items); the shown item comes from one of them with probability 0.35. P(click) gains
//   sequence_weight * 0.9^age, age = how many items are newer than the most recent
//   history item of the shown item's category (0 when there is none): it depends on WHICH
//   items relate to the target, not on the history's average, so pooling blurs it.
// - kSimilarity (the first version): one session interest that the history leans to more
//   the more recent an item is; P(click) gains sequence_weight * sum_j w_j <h_j, t> /
//   sum_j w_j, the recency-weighted (w_j = 0.8^age) mean similarity of the history items'
//   hidden factors to the target item's.
// The user's id cannot stand in for either: the session changes per impression.
// Memory is O(users + items); rows cost nothing to keep. Thread-safety: immutable after
// construction; Sample() may run concurrently.
#pragma once

#include <cstdint>
#include <vector>

#include "worker/data/random.h"

namespace mtps {

struct WorldOptions {
  uint64_t seed = 1;
  int users = 5000;
  int items = 3000;
  int categories = 50;
  int shops = 300;
  int price_buckets = 10;
  int positions = 10;       // slots on a result page
  int max_recent = 6;       // recent items per user: 0..max_recent
  int factor_dim = 8;
  double zipf_users = 1.0;  // popularity exponents
  double zipf_items = 1.05;
  double zipf_categories = 0.9;
  double zipf_shops = 1.0;
  double favourite_share = 0.6;  // impressions drawn from the user's favourite categories
  double ctr = 0.1;              // mean P(click) over impressions
  double conversion = 0.2;       // mean P(buy | click) over clicks
  double rating_noise = 0.5;     // standard deviation of the rating's noise
  int history_length = 0;        // > 0: the sequence world, histories of 0..history_length items
  double sequence_weight = 2.5;  // of the history's sequence term in P(click)
  enum class SequenceTerm { kInterests, kSimilarity };
  SequenceTerm sequence_term = SequenceTerm::kInterests;
};

struct Impression {
  uint32_t user = 0, item = 0, category = 0, shop = 0, price_bucket = 0, position = 0;
  float price = 0;          // observable: standardised log price
  float user_activity = 0;  // observable: a noisy profile of the user's propensity
  const uint32_t* recent = nullptr;  // the user's recent items
  int num_recent = 0;
  std::vector<uint32_t> history;     // sequence world: this impression's items, most recent last
  // The category of each history item (category_of, no draw of its own): DIN's cate_id
  // sequence beside the goods_id one.
  std::vector<uint32_t> history_categories;
  double p_click = 0;  // true P(click)
  double p_buy = 0;    // true P(buy | click)
  bool click = false;
  bool purchase = false;  // click AND buy
  float rating = 0;
  float rating_mean = 0;  // true expected rating
};

class EcommerceWorld {
 public:
  explicit EcommerceWorld(const WorldOptions& options);

  void Sample(uint64_t row, Impression* out) const;

  const WorldOptions& options() const { return options_; }
  double click_bias() const { return click_bias_; }
  uint32_t category_of(uint32_t item) const { return item_category_[item]; }
  double buy_bias() const { return buy_bias_; }

 private:
  // Samples an index in [0, n) with P(i) proportional to 1 / (i + 1)^s.
  class Zipf {
   public:
    Zipf() = default;
    Zipf(int n, double s);
    uint32_t Sample(double u) const;
   private:
    std::vector<double> cdf_;
  };
  struct Logits {
    double click;  // without the click bias
    double buy;    // without the buy bias
    double match, affinity;
  };
  void Draw(uint64_t stream, Impression* out, Logits* logits) const;
  // An item of category `c` by popularity (any item when the category has none).
  uint32_t ItemOf(uint32_t c, SplitMix64& rng) const;
  // Sequence world: the session's history into out->history; returns its sequence term.
  double DrawHistory(uint32_t user, uint32_t intent, uint32_t target, SplitMix64& rng, Impression* out) const;
  double DrawInterestHistory(const uint32_t* interests, uint32_t target, SplitMix64& rng, Impression* out) const;
  double Dot(const float* a, const float* b) const;
  void Calibrate();

  WorldOptions options_;
  int k_;
  Zipf user_pop_, item_pop_, category_pop_, shop_pop_;
  std::vector<float> user_factor_, item_factor_, category_factor_;  // [n x k]
  std::vector<float> user_bias_, user_sensitivity_, user_activity_;
  std::vector<uint32_t> user_favourites_;  // [users x 3]
  std::vector<uint32_t> user_recent_;      // [users x max_recent]
  std::vector<uint8_t> user_num_recent_;
  std::vector<float> item_quality_, item_price_;
  std::vector<uint32_t> item_category_, item_shop_, item_bucket_;
  std::vector<float> shop_quality_;
  std::vector<std::vector<uint32_t>> category_items_;  // by popularity
  std::vector<std::vector<double>> category_cdf_;
  double click_bias_ = 0, buy_bias_ = 0;
};

}  // namespace mtps
