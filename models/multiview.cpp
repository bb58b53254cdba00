// MultiViewScorer: the three views through runtime ops (host copies of one
// number per image), the calibration fit and its application in double on
// the host, the pixel map through ops, and the calibration's JSON form.
#include "models/multiview.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <tuple>

#include "eval/metrics.hpp"
#include "nn/checkpoint.hpp"
#include "nn/module.hpp"
#include "runtime/autograd.hpp"
#include "runtime/error.hpp"
#include "runtime/ops.hpp"

namespace recon::models {

namespace {

struct NamedNormalization {
  Normalization normalization;
  const char* name;
};
constexpr NamedNormalization kNormalizations[] = {
    {Normalization::None, "none"}, {Normalization::Ratio, "ratio"}, {Normalization::Residual, "residual"}};

void check_pair(const char* op, const Tensor& x, const Tensor& x_hat) {
  RECON_CHECK(x.defined() && x_hat.defined(), op << ": undefined input");
  RECON_CHECK(x.dim() == 4, op << ": x must be (N, C, H, W), got " << shape_str(x.shape()));
  RECON_CHECK(x.shape() == x_hat.shape(), op << ": x " << shape_str(x.shape()) << " and x_hat "
                                             << shape_str(x_hat.shape()) << " differ in shape");
}

// (N, D) or (N, D, h, w) -> a contiguous host (N, D).
std::vector<float> pooled(const Tensor& f, int64_t n, int64_t& dim) {
  RECON_CHECK(f.defined() && (f.dim() == 2 || f.dim() == 4) && f.size(0) == n,
              "feature_error: phi must return (N, D) or (N, D, h, w) for N = " << n << ", got "
                                                                               << (f.defined() ? shape_str(f.shape()) : "undefined"));
  Tensor g = f.dim() == 4 ? global_avg_pool(f) : f;
  dim = g.size(1);
  return g.to_vector();
}

double number(const nn::Json& j, std::string_view key) {
  const nn::Json* v = j.find(key);
  RECON_CHECK(v && v->is_number(), "Calibration::from_json: \"" << key << "\" is missing or not a number");
  return v->as_number();
}

const std::string& string_field(const nn::Json& j, std::string_view key) {
  const nn::Json* v = j.find(key);
  RECON_CHECK(v && v->is_string(), "Calibration::from_json: \"" << key << "\" is missing or not a string");
  return v->as_string();
}

}  // namespace

const std::vector<Normalization>& all_normalizations() {
  static const std::vector<Normalization> all = {Normalization::None, Normalization::Ratio, Normalization::Residual};
  return all;
}

const char* normalization_name(Normalization n) {
  for (const auto& entry : kNormalizations)
    if (entry.normalization == n) return entry.name;
  RECON_FAIL("normalization_name: unknown normalisation " << (int)n);
}

Normalization parse_normalization(std::string_view name) {
  for (const auto& entry : kNormalizations)
    if (name == entry.name) return entry.normalization;
  RECON_FAIL("unknown normalisation '" << name << "' (valid: none, ratio, residual)");
}

// ---- ViewErrors ------------------------------------------------------------------

const std::vector<float>& ViewErrors::view(std::string_view name) const {
  std::ostringstream have;
  for (size_t v = 0; v < views.size(); ++v) {
    if (views[v] == name) return error[v];
    have << (v ? ", " : "") << views[v];
  }
  RECON_FAIL("ViewErrors: no view '" << name << "' (have: " << have.str() << ")");
}

void ViewErrors::append(const ViewErrors& o) {
  if (views.empty()) {
    *this = o;
    return;
  }
  RECON_CHECK(views == o.views, "ViewErrors::append: the views differ");
  for (size_t v = 0; v < views.size(); ++v) error[v].insert(error[v].end(), o.error[v].begin(), o.error[v].end());
}

// ---- calibration ------------------------------------------------------------------

const ViewCalibration& Calibration::view(std::string_view name) const {
  for (const ViewCalibration& vc : views)
    if (vc.name == name) return vc;
  RECON_FAIL("Calibration: no view '" << name << "'");
}

nn::Json Calibration::to_json() const {
  nn::Json j = nn::Json::object();
  j.set("measure", nn::Json(difficulty_measure_name(measure)));
  j.set("normalization", nn::Json(normalization_name(normalization)));
  j.set("ratio_floor", nn::Json(ratio_floor));
  j.set("num_images", nn::Json(num_images));
  nn::Json vs = nn::Json::array();
  for (const ViewCalibration& vc : views) {
    nn::Json v = nn::Json::object();
    v.set("name", nn::Json(vc.name));
    v.set("weight", nn::Json(vc.weight));
    v.set("a", nn::Json(vc.a));
    v.set("b", nn::Json(vc.b));
    v.set("mean", nn::Json(vc.mean));
    v.set("std", nn::Json(vc.std));
    v.set("raw_mean", nn::Json(vc.raw_mean));
    vs.push_back(std::move(v));
  }
  j.set("views", std::move(vs));
  if (has_threshold()) {
    j.set("threshold", nn::Json(threshold));
    j.set("score_center", nn::Json(score_center));
    j.set("threshold_rule", nn::Json(threshold_rule));
  }
  return j;
}

Calibration Calibration::from_json(const nn::Json& j) {
  RECON_CHECK(j.is_object(), "Calibration::from_json: expected an object, got " << j.type_name());
  Calibration c;
  c.measure = parse_difficulty_measure(string_field(j, "measure"));
  c.normalization = parse_normalization(string_field(j, "normalization"));
  c.ratio_floor = number(j, "ratio_floor");
  c.num_images = (int64_t)number(j, "num_images");
  const nn::Json* vs = j.find("views");
  RECON_CHECK(vs && vs->is_array(), "Calibration::from_json: \"views\" is missing or not an array");
  for (const nn::Json& v : vs->as_array()) {
    ViewCalibration vc;
    vc.name = string_field(v, "name");
    vc.weight = number(v, "weight");
    vc.a = number(v, "a");
    vc.b = number(v, "b");
    vc.mean = number(v, "mean");
    vc.std = number(v, "std");
    vc.raw_mean = number(v, "raw_mean");
    RECON_CHECK(vc.std > 0, "Calibration::from_json: view '" << vc.name << "' has std " << vc.std);
    c.views.push_back(vc);
  }
  if (j.find("threshold_rule")) {  // optional: checkpoints before the threshold lack it
    c.threshold_rule = string_field(j, "threshold_rule");
    c.threshold = number(j, "threshold");
    c.score_center = number(j, "score_center");
  }
  return c;
}

namespace {
double quantile_of(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double pos = q * (double)(v.size() - 1);
  const size_t lo = (size_t)std::floor(pos);
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - (double)lo) * (v[hi] - v[lo]);
}
}  // namespace

std::string fit_threshold_quantile(Calibration& c, const std::vector<double>& normal_fused, double q) {
  RECON_CHECK(!normal_fused.empty(), "fit_threshold_quantile: no calibration scores");
  RECON_CHECK(q > 0 && q <= 1, "fit_threshold_quantile: the quantile must lie in (0, 1], got " << q);
  c.threshold = quantile_of(normal_fused, q);
  c.score_center = quantile_of(normal_fused, 0.5);
  std::ostringstream rule;
  rule << "quantile " << q;
  c.threshold_rule = rule.str();
  const double n = (double)normal_fused.size();
  if (q >= 1 || n * (1 - q) >= 1) return "";
  std::ostringstream w;
  w << "the " << q << " quantile of only " << normal_fused.size()
    << " calibration scores lies among their largest values, so the false-positive rate of " << (1 - q)
    << " it stands for is not supported by the data (that needs at least " << (int64_t)std::ceil(1 / (1 - q) - 1e-9)
    << " held-out normals): expect more false alarms; hold out more normals (--calibration-fraction) or lower "
       "--threshold-quantile";
  return w.str();
}

void fit_threshold_f1(Calibration& c, const std::vector<double>& fused, const std::vector<int>& labels) {
  RECON_CHECK(fused.size() == labels.size(), "fit_threshold_f1: " << fused.size() << " scores, " << labels.size()
                                                                  << " labels");
  std::vector<double> normals;
  for (size_t i = 0; i < fused.size(); ++i)
    if (labels[i] == 0) normals.push_back(fused[i]);
  RECON_CHECK(!normals.empty() && normals.size() < fused.size(), "fit_threshold_f1: needs normals and anomalies");
  const eval::F1Max f = eval::f1_max(std::vector<float>(fused.begin(), fused.end()), labels);
  c.threshold = f.threshold;
  c.score_center = quantile_of(normals, 0.5);
  c.threshold_rule = "f1-max";
}

double normalized_score(const Calibration& c, double fused) {
  RECON_CHECK(c.has_threshold(), "normalized_score: the calibration has no threshold");
  const double den = c.threshold - c.score_center;
  return (fused - c.score_center) / (den > 0 ? den : 1.0);
}

std::pair<double, double> fit_line(const std::vector<float>& d, const std::vector<float>& e) {
  RECON_CHECK(d.size() == e.size() && !d.empty(),
              "fit_line: need equal, non-empty sizes, got " << d.size() << " and " << e.size());
  const double n = (double)d.size();
  double md = 0, me = 0;
  for (size_t i = 0; i < d.size(); ++i) {
    md += d[i];
    me += e[i];
  }
  md /= n;
  me /= n;
  double sdd = 0, sde = 0;
  for (size_t i = 0; i < d.size(); ++i) {
    sdd += (d[i] - md) * (d[i] - md);
    sde += (d[i] - md) * (e[i] - me);
  }
  const double b = sdd > 0 ? sde / sdd : 0.0;
  return {me - b * md, b};
}

double normalize_error(double e, double d, Normalization normalization, const ViewCalibration& vc,
                       double ratio_floor) {
  switch (normalization) {
    case Normalization::None: return e;
    case Normalization::Ratio: return e / std::max(d, ratio_floor);
    case Normalization::Residual: return e - (vc.a + vc.b * d);
  }
  RECON_FAIL("normalize_error: unknown normalisation " << (int)normalization);
}

Calibration fit_calibration(const ViewErrors& normals, const std::vector<float>& d, DifficultyMeasure measure,
                            Normalization normalization, const std::vector<double>& weights) {
  const size_t n = normals.num_images();
  RECON_CHECK(n > 0, "fit_calibration: no calibration images");
  RECON_CHECK(normalization == Normalization::None || d.size() == n,
              "fit_calibration: " << d.size() << " difficulty values for " << n << " images");
  RECON_CHECK(weights.empty() || weights.size() == normals.views.size(),
              "fit_calibration: " << weights.size() << " weights for " << normals.views.size() << " views");
  Calibration c;
  c.measure = measure;
  c.normalization = normalization;
  c.num_images = (int64_t)n;
  if (!d.empty()) {
    double mean_abs = 0;
    for (float v : d) mean_abs += std::fabs((double)v);
    c.ratio_floor = std::max(kRatioFloorFraction * mean_abs / (double)d.size(), kRatioFloorMin);
  }
  for (size_t v = 0; v < normals.views.size(); ++v) {
    const std::vector<float>& e = normals.error[v];
    RECON_CHECK(e.size() == n, "fit_calibration: view '" << normals.views[v] << "' has " << e.size()
                                                         << " errors, expected " << n);
    ViewCalibration vc;
    vc.name = normals.views[v];
    vc.weight = weights.empty() ? 1.0 : weights[v];
    for (float x : e) vc.raw_mean += x;
    vc.raw_mean /= (double)n;
    if (normalization == Normalization::Residual) std::tie(vc.a, vc.b) = fit_line(d, e);
    std::vector<double> z(n);
    double mean = 0;
    for (size_t i = 0; i < n; ++i) {
      z[i] = normalize_error(e[i], d.empty() ? 0.0 : d[i], normalization, vc, c.ratio_floor);
      mean += z[i];
    }
    mean /= (double)n;
    double var = 0;
    for (double x : z) var += (x - mean) * (x - mean);
    const double sd = std::sqrt(var / (double)n);
    vc.mean = mean;
    vc.std = sd > 0 ? sd : 1.0;  // degenerate: every normal the same; z becomes a plain offset
    c.views.push_back(vc);
  }
  return c;
}

Scores apply_calibration(const Calibration& c, const ViewErrors& errors, const std::vector<float>& d) {
  RECON_CHECK(c.fitted(), "apply_calibration: the calibration is not fitted");
  const size_t n = errors.num_images();
  RECON_CHECK(c.normalization == Normalization::None || d.size() == n,
              "apply_calibration: " << d.size() << " difficulty values for " << n << " images");
  Scores s;
  s.fused.assign(n, 0.0);
  for (const ViewCalibration& vc : c.views) {
    const std::vector<float>& e = errors.view(vc.name);
    std::vector<double> z(n);
    for (size_t i = 0; i < n; ++i) {
      const double norm = normalize_error(e[i], d.empty() ? 0.0 : d[i], c.normalization, vc, c.ratio_floor);
      z[i] = (norm - vc.mean) / vc.std;
      s.fused[i] += vc.weight * z[i];
    }
    s.views.push_back(vc.name);
    s.z.push_back(std::move(z));
  }
  return s;
}

// ---- the views ----------------------------------------------------------------------

std::vector<float> mse_error(const Tensor& x, const Tensor& x_hat) {
  check_pair("mse_error", x, x_hat);
  NoGradGuard no_grad;
  return mean(pow(sub(x, x_hat), 2.f), {1, 2, 3}).to_vector();
}

std::vector<float> ssim_error(const Tensor& x, const Tensor& x_hat) {
  check_pair("ssim_error", x, x_hat);
  NoGradGuard no_grad;
  std::vector<float> s = mean(ssim_map(x, x_hat), {1, 2, 3}).to_vector();
  for (float& v : s) v = 1.f - v;
  return s;
}

std::vector<float> feature_error(const FeatureFn& phi, const Tensor& x, const Tensor& x_hat) {
  check_pair("feature_error", x, x_hat);
  RECON_CHECK((bool)phi, "feature_error: no feature function");
  NoGradGuard no_grad;
  const int64_t n = x.size(0);
  int64_t da = 0, db = 0;
  const std::vector<float> fa = pooled(phi(x), n, da), fb = pooled(phi(x_hat), n, db);
  RECON_CHECK(da == db, "feature_error: phi gave " << da << " and " << db << " features");
  // A floor on the norms: a zero feature vector gives cosine 0 instead of NaN.
  constexpr double kNormFloor = 1e-12;
  std::vector<float> out(n);
  for (int64_t i = 0; i < n; ++i) {
    double ab = 0, aa = 0, bb = 0;
    for (int64_t k = 0; k < da; ++k) {
      const double a = fa[i * da + k], b = fb[i * da + k];
      ab += a * b;
      aa += a * a;
      bb += b * b;
    }
    const double cos = ab / (std::max(std::sqrt(aa), kNormFloor) * std::max(std::sqrt(bb), kNormFloor));
    out[i] = (float)(1.0 - cos);
  }
  return out;
}

// ---- MultiViewScorer --------------------------------------------------------------

MultiViewScorer::MultiViewScorer(FeatureFn phi, ScorerOptions opt) : phi_(std::move(phi)), opt_(std::move(opt)) {
  RECON_CHECK(opt_.map_smoothing >= 1 && opt_.map_smoothing % 2 == 1,
              "MultiViewScorer: map_smoothing " << opt_.map_smoothing << " must be odd and at least 1");
  names_ = {kViewMse, kViewSsim};
  if (phi_) names_.push_back(kViewFeature);
}

void MultiViewScorer::add_view(std::string name, ViewFn fn) {
  RECON_CHECK((bool)fn, "MultiViewScorer::add_view: '" << name << "' has no function");
  for (const std::string& have : names_)
    RECON_CHECK(have != name, "MultiViewScorer::add_view: view '" << name << "' already exists");
  names_.push_back(std::move(name));
  extra_.push_back(std::move(fn));
}

ViewErrors MultiViewScorer::errors(const Tensor& x, const Tensor& x_hat) const {
  NoGradGuard no_grad;
  ViewErrors out;
  out.views = names_;
  out.error.push_back(mse_error(x, x_hat));
  out.error.push_back(ssim_error(x, x_hat));
  if (phi_) out.error.push_back(feature_error(phi_, x, x_hat));
  for (const ViewFn& fn : extra_) {
    std::vector<float> e = fn(x, x_hat);
    RECON_CHECK((int64_t)e.size() == x.size(0), "MultiViewScorer: view '" << names_[out.error.size()] << "' gave "
                                                                          << e.size() << " errors for "
                                                                          << x.size(0) << " images");
    out.error.push_back(std::move(e));
  }
  return out;
}

std::vector<float> MultiViewScorer::difficulty(const Tensor& x) const {
  NoGradGuard no_grad;
  return models::difficulty(x, opt_.measure, opt_.difficulty);
}

void MultiViewScorer::calibrate(const ViewErrors& normals, const std::vector<float>& d) {
  RECON_CHECK(normals.views == names_, "MultiViewScorer::calibrate: the errors' views differ from the scorer's");
  calib_ = fit_calibration(normals, d, opt_.measure, opt_.normalization, opt_.weights);
}

void MultiViewScorer::set_calibration(const Calibration& c) {
  RECON_CHECK(c.views.size() == names_.size(), "MultiViewScorer::set_calibration: " << c.views.size()
                                                                                    << " calibrated views for "
                                                                                    << names_.size() << " views");
  for (size_t v = 0; v < names_.size(); ++v)
    RECON_CHECK(c.views[v].name == names_[v], "MultiViewScorer::set_calibration: view " << v << " is '"
                                                                                        << c.views[v].name
                                                                                        << "', expected '"
                                                                                        << names_[v] << "'");
  calib_ = c;
  opt_.measure = c.measure;
  opt_.normalization = c.normalization;
  opt_.weights.clear();
  for (const ViewCalibration& vc : c.views) opt_.weights.push_back(vc.weight);
}

Scores MultiViewScorer::score(const ViewErrors& errors, const std::vector<float>& d) const {
  RECON_CHECK(calib_.fitted(), "MultiViewScorer::score: calibrate first");
  return apply_calibration(calib_, errors, d);
}

Scores MultiViewScorer::score(const Tensor& x, const Tensor& x_hat) const {
  const std::vector<float> d =
      calib_.normalization == Normalization::None ? std::vector<float>{} : difficulty(x);
  return score(errors(x, x_hat), d);
}

Tensor MultiViewScorer::pixel_map(const Tensor& x, const Tensor& x_hat) const {
  check_pair("pixel_map", x, x_hat);
  NoGradGuard no_grad;
  // Each term over its mean image error on the calibration normals, so both
  // average about 1 on a normal image (1 before calibration).
  double mse_scale = 1, ssim_scale = 1;
  if (calib_.fitted()) {
    for (const ViewCalibration& vc : calib_.views) {
      if (vc.name == kViewMse && vc.raw_mean > 0) mse_scale = vc.raw_mean;
      if (vc.name == kViewSsim && vc.raw_mean > 0) ssim_scale = vc.raw_mean;
    }
  }
  Tensor se = scale(pow(sub(x, x_hat), 2.f), (float)(1.0 / mse_scale));                // (N, C, H, W)
  Tensor dssim = scale(add_scalar(neg(ssim_map(x, x_hat)), 1.f), (float)(1.0 / ssim_scale));  // (N, C, H, W)
  Tensor m = mean(add(se, dssim), {1}, true);                                            // (N, 1, H, W)
  const int k = opt_.map_smoothing;
  if (k == 1) return m;
  const int r = k / 2;
  Pool2dOptions po;
  po.kernel = {k, k};
  po.stride = {1, 1};
  return avg_pool2d(pad(m, {r, r, r, r}, PadMode::Reflect), po);
}

// ---- checkpoints ------------------------------------------------------------------

void save_scored_checkpoint(const std::string& path, const nn::Module& model, const Calibration& c, nn::Json config) {
  RECON_CHECK(config.is_object(), "save_scored_checkpoint: the config must be a JSON object");
  config.set("calibration", c.to_json());
  nn::save_checkpoint(path, model, nullptr, config);
}

Calibration load_calibration(const std::string& path) {
  const nn::Checkpoint ck = nn::read_checkpoint(path);
  const nn::Json* c = ck.config.is_object() ? ck.config.find("calibration") : nullptr;
  RECON_CHECK(c, "load_calibration: " << path << " holds no calibration (config key \"calibration\")");
  return Calibration::from_json(*c);
}

}  // namespace recon::models
