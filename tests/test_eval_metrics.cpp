// eval/metrics: every metric on hand-computed cases, then against
// scikit-learn's values (tests/fixtures/metrics_sklearn.json, written by
// bench/reference/make_metrics_fixture.py), AUPRO also against a scipy
// re-implementation of the MVTec AD reference procedure.
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "eval/metrics.hpp"
#include "nn/json.hpp"
#include "runtime/error.hpp"
#include "runtime/generator.hpp"

using namespace recon;
using namespace recon::eval;

namespace {

template <class T>
void check_vec(const std::vector<T>& got, const std::vector<double>& want) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    INFO("index " << i);
    CHECK((double)got[i] == doctest::Approx(want[i]).epsilon(1e-12));
  }
}

Tensor tensor_of(const std::vector<float>& v, const Shape& shape) { return Tensor::from_vector(v, shape); }

}  // namespace

// ---- auroc ---------------------------------------------------------------------------
TEST_CASE("auroc: perfect, reversed, and chance orderings") {
  CHECK(auroc({0.1f, 0.2f, 0.8f, 0.9f}, {0, 0, 1, 1}) == doctest::Approx(1.0));
  CHECK(auroc({0.9f, 0.8f, 0.2f, 0.1f}, {0, 0, 1, 1}) == doctest::Approx(0.0));
  // Pairs (pos, neg): 0.8>0.1, 0.8>0.2... written out: pos {0.3, 0.8}, neg {0.1, 0.5}:
  // 0.3>0.1 yes, 0.3>0.5 no, 0.8>0.1 yes, 0.8>0.5 yes -> 3/4.
  CHECK(auroc({0.1f, 0.3f, 0.5f, 0.8f}, {0, 1, 0, 1}) == doctest::Approx(0.75));
}

TEST_CASE("auroc: ties count one half") {
  // Everything tied: 0.5 exactly.
  CHECK(auroc({1, 1, 1, 1, 1}, {0, 1, 0, 1, 1}) == doctest::Approx(0.5));
  // pos {2, 1}, neg {1, 0}: 2>1 1, 2>0 1, 1=1 0.5, 1>0 1 -> 3.5/4.
  CHECK(auroc({2, 1, 1, 0}, {1, 1, 0, 0}) == doctest::Approx(0.875));
}

TEST_CASE("auroc: bad input is rejected") {
  CHECK_THROWS_WITH_AS(auroc({1, 2}, {0, 0}), doctest::Contains("needs both normal and anomalous"), recon::Error);
  CHECK_THROWS_WITH_AS(auroc({1, 2}, {0}), doctest::Contains("2 scores for 1 labels"), recon::Error);
  CHECK_THROWS_WITH_AS(auroc({1, 2}, {0, 2}), doctest::Contains("label 2"), recon::Error);
}

// ---- curves --------------------------------------------------------------------------
// The example of sklearn's roc_curve documentation: scores {0.1, 0.4, 0.35, 0.8},
// labels {0, 0, 1, 1}. Thresholds 0.8, 0.4, 0.35, 0.1 admit (tp, fp) = (1, 0),
// (1, 1), (2, 1), (2, 2).
static const std::vector<float> kDocScores = {0.1f, 0.4f, 0.35f, 0.8f};
static const std::vector<int> kDocLabels = {0, 0, 1, 1};

TEST_CASE("roc_curve: one point per distinct threshold after (0, 0) at +inf") {
  const RocCurve c = roc_curve(kDocScores, kDocLabels);
  check_vec(c.fpr, {0, 0, 0.5, 0.5, 1});
  check_vec(c.tpr, {0, 0.5, 0.5, 1, 1});
  REQUIRE(c.thresholds.size() == 5);
  CHECK(std::isinf(c.thresholds[0]));
  CHECK(c.thresholds[1] == 0.8f);
  CHECK(c.thresholds[2] == 0.4f);
  CHECK(c.thresholds[3] == 0.35f);
  CHECK(c.thresholds[4] == 0.1f);

  // Tied scores across the classes make one diagonal step.
  const RocCurve t = roc_curve({2, 1, 1, 0}, {1, 1, 0, 0});
  check_vec(t.fpr, {0, 0, 0.5, 1});
  check_vec(t.tpr, {0, 0.5, 1, 1});
  CHECK_THROWS_WITH_AS(roc_curve({1, 2}, {1, 1}), doctest::Contains("needs both"), recon::Error);
}

TEST_CASE("pr_curve: precision and recall per threshold, thresholds decreasing") {
  const PrCurve c = pr_curve(kDocScores, kDocLabels);
  check_vec(c.precision, {1, 0.5, 2.0 / 3.0, 0.5});
  check_vec(c.recall, {0.5, 0.5, 1, 1});
  REQUIRE(c.thresholds.size() == 4);
  CHECK(c.thresholds[0] == 0.8f);
  CHECK(c.thresholds[3] == 0.1f);
  CHECK_THROWS_WITH_AS(pr_curve({1, 2}, {0, 0}), doctest::Contains("at least one anomalous"), recon::Error);
}

// ---- average precision ---------------------------------------------------------------
TEST_CASE("auprc: average precision, sum of (R_n - R_{n-1}) P_n") {
  // 0.5 * 1 + 0 * 0.5 + 0.5 * 2/3 + 0 * 0.5 (sklearn's documented 0.83).
  CHECK(auprc(kDocScores, kDocLabels) == doctest::Approx(0.5 + 1.0 / 3.0).epsilon(1e-12));
  CHECK(auprc({0.1f, 0.2f, 0.8f, 0.9f}, {0, 0, 1, 1}) == doctest::Approx(1.0));
  // No normals: precision 1 everywhere.
  CHECK(auprc({0.3f, 0.7f}, {1, 1}) == doctest::Approx(1.0));
}

TEST_CASE("auprc: tied scores enter together") {
  // Scores {1, 1, 1, 0}, labels {1, 0, 1, 0}: threshold 1 admits both
  // anomalies and one normal at once (P 2/3, R 1), so AP = 2/3. Any order
  // within the tie gives something else: anomalies first 1, the normal first
  // 1/2 * 1/2 + 1/2 * 2/3 = 7/12, the normal between them 1/2 + 1/2 * 2/3 = 5/6.
  CHECK(auprc({1, 1, 1, 0}, {1, 0, 1, 0}) == doctest::Approx(2.0 / 3.0).epsilon(1e-12));
  CHECK(auprc({1, 1, 1, 0}, {0, 1, 1, 0}) == doctest::Approx(2.0 / 3.0).epsilon(1e-12));  // order-free
  // Everything tied: the base rate.
  CHECK(auprc({5, 5, 5, 5}, {1, 0, 0, 0}) == doctest::Approx(0.25));
}

// ---- F1-max --------------------------------------------------------------------------
TEST_CASE("f1_max: best F1 and its threshold") {
  // F1 = 2tp / (tp + fp + 2) at the four thresholds: 2/3, 1/2, 4/5, 2/3.
  const F1Max f = f1_max(kDocScores, kDocLabels);
  CHECK(f.f1 == doctest::Approx(0.8).epsilon(1e-12));
  CHECK(f.threshold == 0.35f);
  CHECK(f.precision == doctest::Approx(2.0 / 3.0));
  CHECK(f.recall == doctest::Approx(1.0));
  // Perfect separation: F1 1 at the lowest anomaly score.
  const F1Max p = f1_max({0.1f, 0.2f, 0.8f, 0.9f}, {0, 0, 1, 1});
  CHECK(p.f1 == doctest::Approx(1.0));
  CHECK(p.threshold == 0.8f);
}

TEST_CASE("f1_max: a tie goes to the highest threshold") {
  // Scores {4, 3, 2, 1}, labels {1, 0, 0, 1}: F1 = 2/3 at threshold 4 (tp 1,
  // fp 0) and again at 1 (tp 2, fp 2); 1/2 and 2/5 between.
  const F1Max f = f1_max({4, 3, 2, 1}, {1, 0, 0, 1});
  CHECK(f.f1 == doctest::Approx(2.0 / 3.0));
  CHECK(f.threshold == 4.f);
  CHECK(f.recall == doctest::Approx(0.5));
}

// ---- TPR at a fixed FPR ----------------------------------------------------------------
TEST_CASE("tpr_at_fpr: the ROC polyline, highest TPR on a vertical step") {
  // ROC points (0,0) (0,.5) (.5,.5) (.5,1) (1,1).
  CHECK(tpr_at_fpr(kDocScores, kDocLabels, 0.0) == doctest::Approx(0.5));   // top of the vertical at 0
  CHECK(tpr_at_fpr(kDocScores, kDocLabels, 0.25) == doctest::Approx(0.5));  // flat segment
  CHECK(tpr_at_fpr(kDocScores, kDocLabels, 0.5) == doctest::Approx(1.0));   // top of the vertical at .5
  CHECK(tpr_at_fpr(kDocScores, kDocLabels, 1.0) == doctest::Approx(1.0));
  // A diagonal step from tied scores, (0,0) -> (.5,.5) -> (1,1): linear
  // interpolation gives 0.25 at FPR 0.25, where the best single threshold
  // with FPR <= 0.25 reaches only TPR 0.
  CHECK(tpr_at_fpr({1, 1, 0, 0}, {1, 0, 1, 0}, 0.25) == doctest::Approx(0.25));
  CHECK(tpr_at_fpr({1, 1, 0, 0}, {1, 0, 1, 0}, 0.1) == doctest::Approx(0.1));
  CHECK_THROWS_WITH_AS(tpr_at_fpr(kDocScores, kDocLabels, 1.5), doctest::Contains("fpr must be in [0, 1]"),
                       recon::Error);
}

// ---- pixel AUROC -------------------------------------------------------------------------
TEST_CASE("pixel_auroc: pooled over all pixels, ties one half") {
  // pos {0.9, 0.5}, neg {0.1, 0.5}: 1 + 1 + 1 + 0.5 over 4 pairs.
  const Tensor maps = tensor_of({0.1f, 0.9f, 0.5f, 0.5f}, {1, 1, 2, 2});
  const Tensor masks = tensor_of({0, 1, 0, 1}, {1, 1, 2, 2});
  CHECK(pixel_auroc(maps, masks) == doctest::Approx(0.875).epsilon(1e-12));
}

TEST_CASE("pixel_auroc: equals the rank-based auroc on many tied pixels") {
  // 4 images of 64x64, scores on 50 levels (heavy ties), anomalies shifted up.
  Generator gen(7);
  const Shape shape{4, 1, 64, 64};
  const std::vector<float> u = Tensor::uniform(shape, gen).to_vector();
  const std::vector<float> v = Tensor::uniform(shape, gen).to_vector();
  std::vector<float> maps(u.size()), masks(u.size());
  std::vector<int> labels(u.size());
  for (size_t i = 0; i < u.size(); ++i) {
    labels[i] = v[i] < 0.1f;
    masks[i] = (float)labels[i];
    maps[i] = std::floor((u[i] + 0.3f * (float)labels[i]) * 50.f) / 50.f;
  }
  const double want = auroc(maps, labels);
  CHECK(want > 0.6);  // the shift shows
  CHECK(pixel_auroc(tensor_of(maps, shape), tensor_of(masks, shape)) == doctest::Approx(want).epsilon(1e-12));
}

TEST_CASE("pixel_auroc: bad input is rejected") {
  const Tensor maps = tensor_of({0.1f, 0.9f}, {1, 2});
  CHECK_THROWS_WITH_AS(pixel_auroc(maps, tensor_of({0, 0.5f}, {1, 2})), doctest::Contains("not 0 or 1"),
                       recon::Error);
  CHECK_THROWS_WITH_AS(pixel_auroc(maps, tensor_of({0, 1}, {2, 1})), doctest::Contains("differ in shape"),
                       recon::Error);
  CHECK_THROWS_WITH_AS(pixel_auroc(maps, tensor_of({0, 0}, {1, 2})), doctest::Contains("needs both"),
                       recon::Error);
  CHECK_THROWS_WITH_AS(pixel_auroc(tensor_of({NAN, 0.f}, {1, 2}), tensor_of({0, 1}, {1, 2})),
                       doctest::Contains("NaN"), recon::Error);
}

// ---- connected components ------------------------------------------------------------------
TEST_CASE("label_components: 8- and 4-connectivity, raster numbering") {
  // 1 1 0 0 0
  // 0 0 1 0 1
  // 0 0 0 0 1
  // 1 0 0 0 0
  const std::vector<uint8_t> mask = {1, 1, 0, 0, 0,  //
                                     0, 0, 1, 0, 1,  //
                                     0, 0, 0, 0, 1,  //
                                     1, 0, 0, 0, 0};
  std::vector<int32_t> lab;
  CHECK(label_components(mask, 4, 5, lab, 8) == 3);
  CHECK(lab == std::vector<int32_t>{1, 1, 0, 0, 0,  //
                                    0, 0, 1, 0, 2,  //
                                    0, 0, 0, 0, 2,  //
                                    3, 0, 0, 0, 0});
  CHECK(label_components(mask, 4, 5, lab, 4) == 4);
  CHECK(lab == std::vector<int32_t>{1, 1, 0, 0, 0,  //
                                    0, 0, 2, 0, 3,  //
                                    0, 0, 0, 0, 3,  //
                                    4, 0, 0, 0, 0});
  // A ring is one component; its hole is background.
  const std::vector<uint8_t> ring = {1, 1, 1, 1, 0, 1, 1, 1, 1};
  CHECK(label_components(ring, 3, 3, lab, 4) == 1);
  CHECK(lab[4] == 0);
  CHECK(label_components(std::vector<uint8_t>(6, 0), 2, 3, lab) == 0);
  CHECK_THROWS_WITH_AS(label_components(mask, 4, 5, lab, 6), doctest::Contains("4 or 8"), recon::Error);
  CHECK_THROWS_WITH_AS(label_components(mask, 3, 5, lab), doctest::Contains("holds 20 values"), recon::Error);
}

// ---- AUPRO -----------------------------------------------------------------------------------
TEST_CASE("aupro: one region fully detected vs half detected") {
  // 1 x 4 x 4, one 2x2 region; normal pixels score 0.5.
  std::vector<float> mask(16, 0.f), map(16, 0.5f);
  for (int p : {5, 6, 9, 10}) mask[p] = 1.f;
  SUBCASE("fully detected: PRO 1 from FPR 0") {
    for (int p : {5, 6, 9, 10}) map[p] = 1.f;
    CHECK(aupro(tensor_of(map, {1, 4, 4}), tensor_of(mask, {1, 4, 4})) == doctest::Approx(1.0));
  }
  SUBCASE("half detected: PRO 1/2 until FPR 1") {
    // Curve (0,0) (0,.5) (1,.5) (1,1): the area up to 0.3 is 0.3 * 0.5.
    map[5] = map[6] = 1.f;
    map[9] = map[10] = 0.f;
    CHECK(aupro(tensor_of(map, {1, 1, 4, 4}), tensor_of(mask, {1, 1, 4, 4})) == doctest::Approx(0.5));
  }
  SUBCASE("nothing detected before FPR 1") {
    for (int p : {5, 6, 9, 10}) map[p] = 0.f;
    CHECK(aupro(tensor_of(map, {1, 4, 4}), tensor_of(mask, {1, 4, 4})) == doctest::Approx(0.0));
  }
}

TEST_CASE("aupro: every region weighs the same, whatever its size") {
  // Image 0: a 1-pixel region; image 1: a 3x3 region (9 pixels); normals 0.5.
  std::vector<float> mask(2 * 25, 0.f), map(2 * 25, 0.5f);
  const int small = 12;                                  // image 0, centre
  const std::vector<int> big = {31, 32, 33, 36, 37, 38, 41, 42, 43};  // image 1, centre 3x3
  mask[small] = 1.f;
  for (int p : big) mask[p] = 1.f;
  const Tensor masks = tensor_of(mask, {2, 5, 5});
  SUBCASE("small found, big missed: mean overlap (1 + 0) / 2") {
    map[small] = 1.f;
    for (int p : big) map[p] = 0.f;
    // Pixel-pooled overlap would be 1/10; per region it is 1/2.
    CHECK(aupro(tensor_of(map, {2, 5, 5}), masks) == doctest::Approx(0.5));
  }
  SUBCASE("small missed, big found: also 1/2") {
    map[small] = 0.f;
    for (int p : big) map[p] = 1.f;
    CHECK(aupro(tensor_of(map, {2, 5, 5}), masks) == doctest::Approx(0.5));
  }
  SUBCASE("small found, a third of big found: (1 + 1/3) / 2") {
    map[small] = 1.f;
    for (int p : big) map[p] = 0.f;
    map[31] = map[32] = map[33] = 1.f;
    CHECK(aupro(tensor_of(map, {2, 5, 5}), masks) == doctest::Approx(2.0 / 3.0));
  }
}

TEST_CASE("aupro: the FPR limit and the cut of the last segment") {
  // One 1-pixel region at index 0 and ten normal pixels at 0.05, 0.15, ..., 0.95.
  std::vector<float> mask(11, 0.f), map(11);
  mask[0] = 1.f;
  for (int i = 1; i <= 10; ++i) map[i] = 0.05f + 0.1f * (float)(i - 1);
  const Tensor masks = tensor_of(mask, {1, 1, 11});
  SUBCASE("found only after half the normals") {
    // Curve (0,0) ... (0.5,0) (0.5,1) ... (1,1).
    map[0] = 0.5f;
    const Tensor maps = tensor_of(map, {1, 1, 11});
    CHECK(aupro(maps, masks) == doctest::Approx(0.0));
    CHECK(aupro(maps, masks, 1.0) == doctest::Approx(0.5));
    CHECK(aupro(maps, masks, 0.6) == doctest::Approx(0.1 / 0.6));
  }
  SUBCASE("a tie makes a diagonal segment across 0.3") {
    // The region pixel ties with two normals at 0.75, after the normals at
    // 0.95 and 0.85: the curve steps diagonally from (0.2, 0) to (0.4, 1).
    map[0] = map[7] = map[8] = 0.75f;
    const Tensor maps = tensor_of(map, {1, 1, 11});
    // (0.2, 0) -> (0.4, 1): at 0.3 PRO is 0.5; area 0.1 * 0.25 = 0.025.
    CHECK(aupro(maps, masks) == doctest::Approx(0.025 / 0.3));
  }
}

TEST_CASE("aupro: connectivity decides what a region is") {
  // Pixels (0,0), (0,1) and (1,2): one region with 8-connectivity, two with 4.
  // Only (1,2) is detected: overlap 1/3 (8) or (0 + 1) / 2 (4).
  std::vector<float> mask(9, 0.f), map(9, 0.5f);
  mask[0] = mask[1] = mask[5] = 1.f;
  map[0] = map[1] = 0.f;
  map[5] = 1.f;
  const Tensor maps = tensor_of(map, {1, 3, 3}), masks = tensor_of(mask, {1, 3, 3});
  CHECK(aupro(maps, masks) == doctest::Approx(1.0 / 3.0));
  CHECK(aupro(maps, masks, 0.3, 4) == doctest::Approx(0.5));
}

TEST_CASE("aupro: bad input is rejected") {
  const Tensor maps = tensor_of({0.1f, 0.9f, 0.3f, 0.2f}, {1, 2, 2});
  CHECK_THROWS_WITH_AS(aupro(maps, tensor_of({0, 0, 0, 0}, {1, 2, 2})), doctest::Contains("anomalous region"),
                       recon::Error);
  CHECK_THROWS_WITH_AS(aupro(maps, tensor_of({1, 1, 1, 1}, {1, 2, 2})), doctest::Contains("normal pixel"),
                       recon::Error);
  CHECK_THROWS_WITH_AS(aupro(maps, tensor_of({0, 1, 0, 0}, {1, 2, 2}), 0.0), doctest::Contains("max_fpr"),
                       recon::Error);
  CHECK_THROWS_WITH_AS(aupro(tensor_of({0.1f, 0.9f, 0.3f, 0.2f}, {1, 2, 1, 2}), tensor_of({0, 1, 0, 0}, {1, 2, 1, 2})),
                       doctest::Contains("(N, H, W) or (N, 1, H, W)"), recon::Error);
  CHECK_THROWS_WITH_AS(aupro(maps, tensor_of({0, 1, 0, 2}, {1, 2, 2})), doctest::Contains("not 0 or 1"),
                       recon::Error);
}

// ---- against scikit-learn ---------------------------------------------------------------------
namespace {

nn::Json load_fixture() {
  const std::string path = std::string(RECON_SOURCE_DIR) + "/tests/fixtures/metrics_sklearn.json";
  std::ifstream f(path);
  REQUIRE_MESSAGE(f.good(), "cannot open " << path);
  std::stringstream ss;
  ss << f.rdbuf();
  return nn::Json::parse(ss.str());
}

std::vector<float> floats(const nn::Json& a) {
  std::vector<float> v;
  for (const nn::Json& x : a.as_array()) v.push_back((float)x.as_number());
  return v;
}

std::vector<int> ints(const nn::Json& a) {
  std::vector<int> v;
  for (const nn::Json& x : a.as_array()) v.push_back((int)x.as_int());
  return v;
}

}  // namespace

TEST_CASE("image metrics match scikit-learn") {
  const nn::Json fx = load_fixture();
  const nn::Json::Array& sets = fx.at("image_sets").as_array();
  REQUIRE(sets.size() >= 5);
  for (const nn::Json& s : sets) {
    INFO("set " << s.at("name").as_string());
    const std::vector<float> scores = floats(s.at("scores"));
    const std::vector<int> labels = ints(s.at("labels"));
    CHECK(auroc(scores, labels) == doctest::Approx(s.at("roc_auc").as_number()).epsilon(1e-12));
    // The ROC curve's trapezoids give the same area as the ranks.
    const RocCurve roc = roc_curve(scores, labels);
    double area = 0;
    for (size_t i = 1; i < roc.fpr.size(); ++i)
      area += 0.5 * (roc.tpr[i] + roc.tpr[i - 1]) * (roc.fpr[i] - roc.fpr[i - 1]);
    CHECK(area == doctest::Approx(s.at("roc_auc").as_number()).epsilon(1e-12));
    CHECK(auprc(scores, labels) == doctest::Approx(s.at("average_precision").as_number()).epsilon(1e-12));
    const F1Max f = f1_max(scores, labels);
    CHECK(f.f1 == doctest::Approx(s.at("f1_max").as_number()).epsilon(1e-12));
    CHECK(f.threshold == (float)s.at("f1_threshold").as_number());
    for (const nn::Json& t : s.at("tpr_at_fpr").as_array()) {
      INFO("fpr " << t.at("fpr").as_number());
      CHECK(tpr_at_fpr(scores, labels, t.at("fpr").as_number()) ==
            doctest::Approx(t.at("tpr").as_number()).epsilon(1e-12));
    }
  }
}

TEST_CASE("pixel metrics match scikit-learn and the MVTec AD procedure") {
  const nn::Json fx = load_fixture();
  for (const nn::Json& s : fx.at("pixel_sets").as_array()) {
    INFO("set " << s.at("name").as_string());
    const std::vector<int> dims = ints(s.at("shape"));
    const Shape shape{dims.at(0), dims.at(1), dims.at(2)};
    const Tensor maps = tensor_of(floats(s.at("maps")), shape);
    const Tensor masks = tensor_of(floats(s.at("masks")), shape);
    CHECK(pixel_auroc(maps, masks) == doctest::Approx(s.at("pixel_auroc").as_number()).epsilon(1e-12));
    CHECK(aupro(maps, masks, 0.3, 8) == doctest::Approx(s.at("aupro_0.3_conn8").as_number()).epsilon(1e-10));
    CHECK(aupro(maps, masks, 0.3, 4) == doctest::Approx(s.at("aupro_0.3_conn4").as_number()).epsilon(1e-10));
    CHECK(aupro(maps, masks, 1.0, 8) == doctest::Approx(s.at("aupro_1.0_conn8").as_number()).epsilon(1e-10));
  }
}
