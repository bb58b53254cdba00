// MultiViewScorer: method 1's image score (DESIGN.md). An image x and its
// reconstruction x_hat are compared in several views, each giving one error
// per image:
//   "mse"     e = mean((x - x_hat)^2)                    (pixel view)
//   "ssim"    e = 1 - mean(ssim_map(x, x_hat))           (local view)
//   "feature" e = 1 - cos(phi(x), phi(x_hat))            (global view; phi =
//             globally pooled encoder features, given as a function so that
//             any encoder plugs in: ConvAE::features, the RotNet encoder)
// plus any extra view a caller adds (e.g. method 2's rotation score).
// Each error is normalised by a difficulty measure d(x) (models/difficulty):
//   none      n = e
//   ratio     n = e / max(d, floor), floor = kRatioFloorFraction * mean |d|
//             over the calibration normals (scale-free, see below)
//   residual  n = e - (a + b d), a and b the least-squares line through the
//             calibration normals' (d, e)
// then z-scored with the mean and standard deviation of n over the
// calibration normals; the image score is the weighted sum of the z-scores.
// Calibration uses held-out normal images only. Its state (per view: weight,
// a, b, mean, std, raw mean; the measure; the normalisation; the ratio floor)
// is a small JSON object stored in a checkpoint's config.
// The pixel anomaly map is the squared-error map over the calibration's mean
// MSE plus (1 - SSIM map) over the calibration's mean SSIM error, channels
// averaged, smoothed by a k x k box filter (reflect padding): (N, 1, H, W).
#pragma once
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "models/difficulty.hpp"
#include "nn/json.hpp"
#include "runtime/tensor.hpp"

namespace recon::nn {
class Module;
}

namespace recon::models {

enum class Normalization {
  None,      // "none"
  Ratio,     // "ratio"
  Residual,  // "residual"
};
const std::vector<Normalization>& all_normalizations();
const char* normalization_name(Normalization n);
// Throws recon::Error listing the valid names.
Normalization parse_normalization(std::string_view name);

// The ratio's guard against d near 0: d is replaced by max(d, floor) with
// floor = kRatioFloorFraction times the mean |d| of the calibration normals
// (at least kRatioFloorMin). A fraction rather than a fixed epsilon because
// the measures differ in scale by orders of magnitude (entropy in bits ~ 1-8,
// the lowpass error ~ 1e-3); 1% of the typical value only touches images
// that are almost perfectly flat.
inline constexpr double kRatioFloorFraction = 0.01;
inline constexpr double kRatioFloorMin = 1e-12;

// The built-in view names.
inline constexpr const char* kViewMse = "mse";
inline constexpr const char* kViewSsim = "ssim";
inline constexpr const char* kViewFeature = "feature";

// Per-image numbers of a set of images, one row per view, filled batch by
// batch: error[v][i] is view v's error of image i.
struct ViewErrors {
  std::vector<std::string> views;
  std::vector<std::vector<float>> error;  // [view][image]

  size_t num_images() const { return error.empty() ? 0 : error[0].size(); }
  // The row of view `name`; throws naming the views present.
  const std::vector<float>& view(std::string_view name) const;
  // Appends o's images (the same views in the same order; an empty *this
  // takes o's views).
  void append(const ViewErrors& o);
};

// The calibration of one view.
struct ViewCalibration {
  std::string name;
  double weight = 1;    // in the fused score
  double a = 0, b = 0;  // residual's line e ~ a + b d (0, 0 for the others)
  double mean = 0;      // of the normalised error over the calibration normals
  double std = 1;       // population standard deviation of the same
  double raw_mean = 0;  // mean raw error over the calibration normals (pixel map scale)
};

struct Calibration {
  DifficultyMeasure measure = DifficultyMeasure::Entropy;
  Normalization normalization = Normalization::None;
  double ratio_floor = kRatioFloorMin;  // see kRatioFloorFraction
  int64_t num_images = 0;               // calibration normals it was fitted on
  std::vector<ViewCalibration> views;
  // The decision threshold on the fused score (fit_threshold_quantile or
  // fit_threshold_f1; an image is anomalous when fused >= threshold), the
  // median fused score of the calibration normals (normalized_score's zero)
  // and how the threshold was chosen ("quantile 0.99", "f1-max"). Optional
  // in the JSON: an empty rule means no threshold was fitted.
  double threshold = 0;
  double score_center = 0;
  std::string threshold_rule;

  bool fitted() const { return num_images > 0; }
  bool has_threshold() const { return !threshold_rule.empty(); }
  const ViewCalibration& view(std::string_view name) const;  // throws when absent
  nn::Json to_json() const;
  // Throws recon::Error naming a missing or malformed field.
  static Calibration from_json(const nn::Json& j);
};

// Fits a calibration on normal images: `normals` their errors, `d` their
// difficulty under `measure` (ignored, may be empty, for Normalization::None).
// weights: one per view (empty: 1 each). A standard deviation of 0 (all
// normalised errors equal) is replaced by 1, so that z is a plain offset.
// A residual fit with constant d has b = 0 and a = the mean error.
Calibration fit_calibration(const ViewErrors& normals, const std::vector<float>& d, DifficultyMeasure measure,
                            Normalization normalization, const std::vector<double>& weights = {});

// The threshold as the q-quantile (linear interpolation between order
// statistics, numpy's default) of the calibration normals' fused scores,
// q in (0, 1]; also sets score_center to their median. Returns a warning
// for the user (empty when none): with fewer than 1 / (1 - q) scores the
// quantile lies between the largest calibration scores, so the
// false-positive rate 1 - q it stands for is not supported by the data.
std::string fit_threshold_quantile(Calibration& c, const std::vector<double>& normal_fused, double q);
// The threshold of the best F1 (eval::f1_max) on labelled validation scores
// (0 normal, 1 anomalous; both present); score_center is the normals' median.
void fit_threshold_f1(Calibration& c, const std::vector<double>& fused, const std::vector<int>& labels);
// (fused - score_center) / (threshold - score_center): 0 for a typical
// normal, 1 at the threshold (the denominator is 1 when not positive).
// Needs a threshold.
double normalized_score(const Calibration& c, double fused);

// One normalised error (before the z-score).
double normalize_error(double e, double d, Normalization normalization, const ViewCalibration& vc,
                       double ratio_floor);

struct Scores {
  std::vector<std::string> views;
  std::vector<std::vector<double>> z;  // [view][image] z-scores
  std::vector<double> fused;           // [image] sum over views of weight * z
};
// Scores images with a fitted calibration: errors must hold every calibrated
// view (extra rows are ignored), d one value per image (any for None).
Scores apply_calibration(const Calibration& c, const ViewErrors& errors, const std::vector<float>& d);

// Least squares e ~ a + b d (b = 0 when d is constant). Returns {a, b}.
std::pair<double, double> fit_line(const std::vector<float>& d, const std::vector<float>& e);

// ---- the scorer -----------------------------------------------------------------

// phi: (N, C, H, W) -> (N, D) or a feature map (N, D, h, w), which is then
// globally average-pooled.
using FeatureFn = std::function<Tensor(const Tensor&)>;
// An extra view: one error per image from x and x_hat (both (N, C, H, W)).
using ViewFn = std::function<std::vector<float>(const Tensor& x, const Tensor& x_hat)>;

struct ScorerOptions {
  DifficultyMeasure measure = DifficultyMeasure::Entropy;
  Normalization normalization = Normalization::Residual;
  DifficultyOptions difficulty;
  std::vector<double> weights;  // per view in view_names() order; empty: 1 each
  int map_smoothing = 3;        // box filter size of the pixel map (odd; 1: none)
};

class MultiViewScorer {
 public:
  // Views "mse", "ssim", and "feature" when phi is given.
  explicit MultiViewScorer(FeatureFn phi = {}, ScorerOptions opt = {});
  // Appends a view after the built-in ones; its name must be new.
  void add_view(std::string name, ViewFn fn);
  const std::vector<std::string>& view_names() const { return names_; }
  const ScorerOptions& options() const { return opt_; }

  // Raw errors of every view, one per image; no tape.
  ViewErrors errors(const Tensor& x, const Tensor& x_hat) const;
  // d(x) under the options' measure.
  std::vector<float> difficulty(const Tensor& x) const;

  // Fits the calibration on held-out normals (their errors and difficulty).
  void calibrate(const ViewErrors& normals, const std::vector<float>& d);
  // Takes a calibration (e.g. from a checkpoint): its views must be this
  // scorer's views; the measure and normalisation become the options'.
  void set_calibration(const Calibration& c);
  const Calibration& calibration() const { return calib_; }

  // z-scores and fused score of each image; needs a calibration.
  Scores score(const ViewErrors& errors, const std::vector<float>& d) const;
  Scores score(const Tensor& x, const Tensor& x_hat) const;

  // The pixel anomaly map (N, 1, H, W) (see the header comment); before
  // calibration both terms are unscaled. No tape.
  Tensor pixel_map(const Tensor& x, const Tensor& x_hat) const;

 private:
  FeatureFn phi_;
  ScorerOptions opt_;
  std::vector<std::string> names_;
  std::vector<ViewFn> extra_;  // the views after the built-in ones
  Calibration calib_;
};

// Per-image views on their own (the scorer calls these): (N, C, H, W) -> N.
std::vector<float> mse_error(const Tensor& x, const Tensor& x_hat);
std::vector<float> ssim_error(const Tensor& x, const Tensor& x_hat);
// 1 - cosine similarity of phi(x) and phi(x_hat); a zero feature vector
// counts as cosine 0 (the norms are floored at 1e-12).
std::vector<float> feature_error(const FeatureFn& phi, const Tensor& x, const Tensor& x_hat);

// ---- checkpoints -------------------------------------------------------------------
// A checkpoint of a model and its calibration: the model's state_dict and
// `config` with the calibration under the key "calibration".
void save_scored_checkpoint(const std::string& path, const nn::Module& model, const Calibration& c,
                            nn::Json config = nn::Json::object());
// The calibration stored in a checkpoint's config.
Calibration load_calibration(const std::string& path);

}  // namespace recon::models
