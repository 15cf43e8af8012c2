// mtps-datagen: writes a synthetic e-commerce data set (train/eval files, oracle.json,
// job.yaml), or with `convert` turns a CSV file into .mtb through a job spec.
//
//   mtps-datagen --out /data/shop --rows 200000 --seed 7 [--format csv] [--rating]
//                [--world sequence --history_length 20 --sequence_term interests|similarity]
//   mtps-datagen convert --in day1.csv --config job.yaml --out day1.mtb
#include <gflags/gflags.h>
#include <glog/logging.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "protocol/job_spec.h"
#include "protocol/program_flags.h"
#include "worker/data/csv_to_mtb.h"
#include "worker/data/datagen.h"
#include "worker/data/feature_map.h"

DEFINE_string(out, "", "output directory (generate) or .mtb file (convert)");
DEFINE_int64(rows, 200000, "records to generate, train and eval together");
DEFINE_uint64(seed, 1, "seed of the world and of every record");
DEFINE_int32(users, 5000, "users in the world");
DEFINE_int32(items, 3000, "items in the world");
DEFINE_int32(categories, 50, "item categories");
DEFINE_int32(shops, 300, "shops");
DEFINE_int32(price_buckets, 10, "price buckets");
DEFINE_double(eval_fraction, 0.1, "share of the records that go to the eval split");
DEFINE_int32(train_files, 4, "train files, so that workers can split them");
DEFINE_string(format, "mtb", "output format: mtb or csv");
DEFINE_bool(rating, false, "add a rating column and an mse task");
DEFINE_double(ctr, 0.1, "mean click probability of an impression");
DEFINE_double(conversion, 0.2, "mean purchase probability of a click");
DEFINE_int64(row_group_rows, 16384, "records per .mtb row group");
DEFINE_string(world, "ecommerce",
              "ecommerce, or sequence: records also carry hist_items, the session's recent items "
              "(most recent last), and P(click) depends on them relative to the shown item "
              "(--sequence_term)");
DEFINE_int32(history_length, 20, "sequence world: the longest history (and the spec's max_length)");
DEFINE_string(sequence_term, "interests",
              "sequence world: interests (diverse interests: the history mixes three session "
              "interests with unrelated items; P(click) gains sequence_weight * 0.9^age of the most "
              "recent history item of the shown item's category, 0 without one) or similarity (the "
              "recency-weighted mean similarity of the history's hidden factors to the shown item's)");
DEFINE_double(sequence_weight, 2.5, "sequence world: weight of the sequence term in the click logit");
DEFINE_int32(threads, 0, "generator threads (0: one per core)");
DEFINE_string(in, "", "convert: the CSV file to read");
DEFINE_string(config, "", "convert: the job spec whose features map the CSV columns");
DEFINE_string(on_bad_record, "", "convert: skip or stop (default: the spec's data.on_bad_record)");

namespace {

int Convert() {
  if (FLAGS_in.empty() || FLAGS_config.empty() || FLAGS_out.empty()) {
    LOG(ERROR) << "convert needs --in X.csv --config job.yaml --out X.mtb";
    return 2;
  }
  mtps::StatusOr<mtps::JobSpec> spec = mtps::LoadJobSpec(FLAGS_config);
  if (!spec.ok()) {
    LOG(ERROR) << spec.status();
    return 1;
  }
  mtps::StatusOr<mtps::FeatureMap> map = mtps::FeatureMap::Create(*spec);
  if (!map.ok()) {
    LOG(ERROR) << map.status();
    return 1;
  }
  mtps::DataSpec::BadRecordPolicy policy = spec->data.on_bad_record;
  if (FLAGS_on_bad_record == "skip") {
    policy = mtps::DataSpec::BadRecordPolicy::kSkip;
  } else if (FLAGS_on_bad_record == "stop") {
    policy = mtps::DataSpec::BadRecordPolicy::kStop;
  } else if (!FLAGS_on_bad_record.empty()) {
    LOG(ERROR) << "--on_bad_record must be skip or stop, got '" << FLAGS_on_bad_record << "'";
    return 2;
  }
  mtps::StatusOr<mtps::ConvertReport> r =
      mtps::ConvertCsvToMtb(FLAGS_in, *map, policy, FLAGS_out, FLAGS_row_group_rows, spec->data.csv_delimiter);
  if (!r.ok()) {
    LOG(ERROR) << r.status();
    return 1;
  }
  std::printf("converted %s -> %s: %lld records, %lld bad records skipped%s%s\n", FLAGS_in.c_str(),
              FLAGS_out.c_str(), static_cast<long long>(r->rows), static_cast<long long>(r->bad_records),
              r->bad_records > 0 ? "; first: " : "", r->first_bad_record.c_str());
  return 0;
}

int Generate() {
  mtps::DatagenOptions o;
  o.out_dir = FLAGS_out;
  o.rows = FLAGS_rows;
  o.world.seed = FLAGS_seed;
  o.world.users = FLAGS_users;
  o.world.items = FLAGS_items;
  o.world.categories = FLAGS_categories;
  o.world.shops = FLAGS_shops;
  o.world.price_buckets = FLAGS_price_buckets;
  o.world.ctr = FLAGS_ctr;
  o.world.conversion = FLAGS_conversion;
  o.eval_fraction = FLAGS_eval_fraction;
  o.train_files = FLAGS_train_files;
  o.rating = FLAGS_rating;
  o.row_group_rows = FLAGS_row_group_rows;
  if (FLAGS_world == "sequence") {
    o.world.history_length = FLAGS_history_length;
    o.world.sequence_weight = FLAGS_sequence_weight;
    if (o.world.history_length <= 0) {
      LOG(ERROR) << "--history_length must be > 0 for --world sequence, got " << FLAGS_history_length;
      return 2;
    }
    if (FLAGS_sequence_term == "interests") {
      o.world.sequence_term = mtps::WorldOptions::SequenceTerm::kInterests;
    } else if (FLAGS_sequence_term == "similarity") {
      o.world.sequence_term = mtps::WorldOptions::SequenceTerm::kSimilarity;
    } else {
      LOG(ERROR) << "--sequence_term must be interests or similarity, got '" << FLAGS_sequence_term << "'";
      return 2;
    }
  } else if (FLAGS_world != "ecommerce") {
    LOG(ERROR) << "--world must be ecommerce or sequence, got '" << FLAGS_world << "'";
    return 2;
  }
  o.threads = FLAGS_threads > 0 ? FLAGS_threads : std::max(1u, std::thread::hardware_concurrency());
  if (FLAGS_format == "mtb") {
    o.format = mtps::DataSpec::Format::kMtb;
  } else if (FLAGS_format == "csv") {
    o.format = mtps::DataSpec::Format::kCsv;
  } else {
    LOG(ERROR) << "--format must be mtb or csv, got '" << FLAGS_format << "'";
    return 2;
  }
  const auto start = std::chrono::steady_clock::now();
  mtps::StatusOr<mtps::DatagenReport> r = mtps::GenerateDataset(o);
  if (!r.ok()) {
    LOG(ERROR) << r.status();
    return 1;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("wrote %lld train rows in %zu files and %lld eval rows to %s in %.2f s (%.0f rows/s)\n",
              static_cast<long long>(r->train_rows), r->train_files.size(), static_cast<long long>(r->eval_rows),
              FLAGS_out.c_str(), seconds, static_cast<double>(FLAGS_rows) / seconds);
  std::printf("train: ctr %.4f, P(purchase | click) %.4f; eval: ctr %.4f, P(purchase | click) %.4f\n",
              r->train_ctr, r->train_conversion, r->eval_ctr, r->eval_conversion);
  std::printf("oracle AUC on eval: ctr %.4f, cvr (CTCVR) %.4f%s\n", r->ctr.oracle_auc, r->cvr.oracle_auc,
              FLAGS_rating ? (", rating oracle MSE " + std::to_string(r->rating.oracle_mse)).c_str() : "");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  mtps::ParseProgramFlags(
      &argc, &argv,
      "mtps-datagen --out DIR --rows N --seed S [--format mtb|csv] [--rating] ...\n"
      "       mtps-datagen convert --in X.csv --config job.yaml --out X.mtb");
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;
  if (argc > 1 && std::strcmp(argv[1], "convert") == 0) return Convert();
  if (argc > 1) {
    LOG(ERROR) << "unknown command '" << argv[1] << "' (the only command is convert)";
    return 2;
  }
  return Generate();
}
