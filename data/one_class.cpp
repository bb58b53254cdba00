// One-class and hold-out splits: seeded permutations of index lists wrapped
// in SubsetDatasets.
#include "data/one_class.hpp"

#include <algorithm>
#include <cmath>

#include "runtime/error.hpp"

namespace recon::data {

// Shuffles `idx` with `seed` and cuts it into consecutive parts of the given
// sizes (the last takes the rest); each part sorted so sets read in order.
static std::vector<std::vector<size_t>> seeded_parts(std::vector<size_t> idx, const std::vector<size_t>& sizes,
                                                     uint64_t seed) {
  Generator gen(seed);
  std::vector<size_t> perm = random_permutation(idx.size(), gen);
  std::vector<std::vector<size_t>> parts;
  size_t at = 0;
  for (size_t k = 0; k <= sizes.size(); ++k) {
    size_t n = k < sizes.size() ? sizes[k] : idx.size() - at;
    std::vector<size_t> part;
    for (size_t j = 0; j < n; ++j) part.push_back(idx[perm[at + j]]);
    std::sort(part.begin(), part.end());
    parts.push_back(std::move(part));
    at += n;
  }
  return parts;
}

static size_t fraction_count(double f, size_t n) { return (size_t)std::llround(f * (double)n); }

AnomalySplit one_class_split(const DatasetPtr& train_set, const DatasetPtr& test_set, int normal_class,
                             double calibration_fraction, uint64_t seed) {
  RECON_CHECK(train_set && test_set, "one_class_split: null dataset");
  RECON_CHECK(calibration_fraction >= 0 && calibration_fraction < 1,
              "one_class_split: calibration fraction must be in [0, 1), got " << calibration_fraction);
  std::vector<size_t> normal;
  for (size_t i = 0; i < train_set->size(); ++i)
    if (train_set->label(i) == normal_class) normal.push_back(i);
  RECON_CHECK(!normal.empty(), "one_class_split: class " << normal_class << " has no training images (empty class)");
  size_t n_cal = fraction_count(calibration_fraction, normal.size());
  RECON_CHECK(calibration_fraction == 0 || n_cal > 0,
              "one_class_split: calibration fraction " << calibration_fraction << " of " << normal.size()
                                                       << " images leaves no calibration images");
  RECON_CHECK(n_cal < normal.size(), "one_class_split: calibration takes all " << normal.size()
                                                                               << " images of class " << normal_class);
  auto parts = seeded_parts(normal, {n_cal}, seed);
  AnomalySplit s;
  s.calibration = std::make_shared<SubsetDataset>(train_set, parts[0], std::vector<int>(parts[0].size(), 0));
  s.train = std::make_shared<SubsetDataset>(train_set, parts[1], std::vector<int>(parts[1].size(), 0));
  std::vector<size_t> all(test_set->size());
  std::vector<int> labels(test_set->size());
  for (size_t i = 0; i < all.size(); ++i) {
    all[i] = i;
    labels[i] = test_set->label(i) != normal_class ? 1 : 0;
  }
  s.test = std::make_shared<SubsetDataset>(test_set, std::move(all), std::move(labels));
  return s;
}

AnomalySplit holdout_split(const DatasetPtr& all, double test_fraction, double calibration_fraction,
                           uint64_t seed) {
  RECON_CHECK(all, "holdout_split: null dataset");
  RECON_CHECK(test_fraction >= 0 && calibration_fraction >= 0 && test_fraction + calibration_fraction < 1,
              "holdout_split: fractions " << test_fraction << " + " << calibration_fraction
                                          << " must be non-negative and sum below 1");
  std::vector<size_t> normal, anomalous;
  for (size_t i = 0; i < all->size(); ++i) {
    int l = all->label(i);
    RECON_CHECK(l == 0 || l == 1, "holdout_split: " << all->source(i) << " has label " << l << ", expected 0 or 1");
    (l == 0 ? normal : anomalous).push_back(i);
  }
  RECON_CHECK(!normal.empty(), "holdout_split: no normal images (empty class)");
  size_t n_test = fraction_count(test_fraction, normal.size());
  size_t n_cal = fraction_count(calibration_fraction, normal.size());
  RECON_CHECK(n_test + n_cal < normal.size(),
              "holdout_split: the fractions leave no training images of " << normal.size());
  auto parts = seeded_parts(normal, {n_test, n_cal}, seed);
  AnomalySplit s;
  std::vector<size_t> test = parts[0];
  test.insert(test.end(), anomalous.begin(), anomalous.end());
  std::sort(test.begin(), test.end());
  s.test = std::make_shared<SubsetDataset>(all, std::move(test));
  s.calibration = std::make_shared<SubsetDataset>(all, parts[1]);
  s.train = std::make_shared<SubsetDataset>(all, parts[2]);
  return s;
}

}  // namespace recon::data
