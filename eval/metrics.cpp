// Metrics over scores: the image-level AUROC by ranking (Mann-Whitney U);
// every curve-based metric through one sweep over the distinct thresholds,
// highest first, of the two classes' scores sorted separately; pixel metrics
// over the flattened maps; connected components by flood fill.
#include "eval/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>

#include "runtime/error.hpp"

namespace recon::eval {

double auroc(const std::vector<float>& scores, const std::vector<int>& labels) {
  RECON_CHECK(scores.size() == labels.size(),
              "auroc: " << scores.size() << " scores for " << labels.size() << " labels");
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  for (float s : scores) RECON_CHECK(!std::isnan(s), "auroc: a score is NaN");
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  double rank_sum_pos = 0;  // sum of the (1-based, tie-averaged) ranks of the anomalies
  size_t n_pos = 0;
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j < order.size() && scores[order[j]] == scores[order[i]]) ++j;
    const double avg_rank = 0.5 * (double)(i + 1 + j);  // mean of ranks i+1..j
    for (size_t k = i; k < j; ++k) {
      int l = labels[order[k]];
      RECON_CHECK(l == 0 || l == 1, "auroc: label " << l << " at index " << order[k] << " is not 0 or 1");
      if (l == 1) {
        rank_sum_pos += avg_rank;
        ++n_pos;
      }
    }
    i = j;
  }
  const size_t n_neg = labels.size() - n_pos;
  RECON_CHECK(n_pos > 0 && n_neg > 0, "auroc: needs both normal and anomalous samples (got " << n_neg
                                          << " normal, " << n_pos << " anomalous)");
  const double u = rank_sum_pos - (double)n_pos * (double)(n_pos + 1) / 2.0;
  return u / ((double)n_pos * (double)n_neg);
}

namespace {

// The scores of each class, each sorted in decreasing order.
struct SplitScores {
  std::vector<float> pos;  // anomalies
  std::vector<float> neg;  // normals
};

void sort_decreasing(std::vector<float>& v) { std::sort(v.begin(), v.end(), std::greater<float>()); }

SplitScores split_scores(const char* op, const std::vector<float>& scores, const std::vector<int>& labels) {
  RECON_CHECK(scores.size() == labels.size(),
              op << ": " << scores.size() << " scores for " << labels.size() << " labels");
  SplitScores s;
  for (size_t i = 0; i < scores.size(); ++i) {
    RECON_CHECK(!std::isnan(scores[i]), op << ": the score at index " << i << " is NaN");
    RECON_CHECK(labels[i] == 0 || labels[i] == 1,
                op << ": label " << labels[i] << " at index " << i << " is not 0 or 1");
    (labels[i] == 1 ? s.pos : s.neg).push_back(scores[i]);
  }
  sort_decreasing(s.pos);
  sort_decreasing(s.neg);
  return s;
}

void require_both(const char* op, size_t n_pos, size_t n_neg, const char* what = "samples") {
  RECON_CHECK(n_pos > 0 && n_neg > 0, op << ": needs both normal and anomalous " << what << " (got " << n_neg
                                         << " normal, " << n_pos << " anomalous)");
}

void require_pos(const char* op, size_t n_pos) {
  RECON_CHECK(n_pos > 0, op << ": needs at least one anomalous sample (got none)");
}

// Calls visit(threshold, tp, fp) once per distinct score, highest first, with
// the counts of anomalies (tp) and normals (fp) scoring >= threshold.
template <class Visit>
void sweep_thresholds(const SplitScores& s, Visit&& visit) {
  size_t i = 0, j = 0;  // next unvisited anomaly / normal
  while (i < s.pos.size() || j < s.neg.size()) {
    float t;
    if (i == s.pos.size()) t = s.neg[j];
    else if (j == s.neg.size()) t = s.pos[i];
    else t = std::max(s.pos[i], s.neg[j]);
    while (i < s.pos.size() && s.pos[i] == t) ++i;
    while (j < s.neg.size() && s.neg[j] == t) ++j;
    visit(t, i, j);
  }
}

// Area under the ROC polyline (trapezoids between the distinct thresholds),
// which equals the Mann-Whitney AUROC with ties counted one half.
double roc_area(const SplitScores& s) {
  double twice_area = 0;  // sum of dfp * (tp + tp_prev), integer-valued terms
  size_t tp_prev = 0, fp_prev = 0;
  sweep_thresholds(s, [&](float, size_t tp, size_t fp) {
    twice_area += (double)(fp - fp_prev) * (double)(tp + tp_prev);
    tp_prev = tp;
    fp_prev = fp;
  });
  return twice_area / (2.0 * (double)s.pos.size() * (double)s.neg.size());
}

// The scores of a tensor on the host: a pointer into it when it is a
// contiguous CPU tensor, else into a copy.
struct HostValues {
  std::vector<float> copy;
  const float* ptr = nullptr;
  explicit HostValues(const Tensor& t) {
    if (t.device().is_cpu() && t.is_contiguous()) {
      ptr = t.data();
    } else {
      copy = t.to_vector();
      ptr = copy.data();
    }
  }
};

void check_maps_masks(const char* op, const Tensor& maps, const Tensor& masks) {
  RECON_CHECK(maps.defined() && masks.defined(), op << ": maps and masks must be defined tensors");
  RECON_CHECK(maps.shape() == masks.shape(), op << ": maps " << shape_str(maps.shape()) << " and masks "
                                                << shape_str(masks.shape()) << " differ in shape");
  RECON_CHECK(maps.numel() > 0, op << ": no pixels");
}

// Reads mask value m at flat index i as a label; anything but 0 or 1 throws.
bool mask_label(const char* op, float m, size_t i) {
  RECON_CHECK(m == 0.f || m == 1.f, op << ": mask value " << m << " at flat index " << i
                                       << " is not 0 or 1 (binarize the masks first)");
  return m == 1.f;
}

}  // namespace

RocCurve roc_curve(const std::vector<float>& scores, const std::vector<int>& labels) {
  const SplitScores s = split_scores("roc_curve", scores, labels);
  require_both("roc_curve", s.pos.size(), s.neg.size());
  RocCurve c;
  c.fpr.push_back(0);
  c.tpr.push_back(0);
  c.thresholds.push_back(std::numeric_limits<float>::infinity());
  const double n_pos = (double)s.pos.size(), n_neg = (double)s.neg.size();
  sweep_thresholds(s, [&](float t, size_t tp, size_t fp) {
    c.fpr.push_back((double)fp / n_neg);
    c.tpr.push_back((double)tp / n_pos);
    c.thresholds.push_back(t);
  });
  return c;
}

PrCurve pr_curve(const std::vector<float>& scores, const std::vector<int>& labels) {
  const SplitScores s = split_scores("pr_curve", scores, labels);
  require_pos("pr_curve", s.pos.size());
  PrCurve c;
  const double n_pos = (double)s.pos.size();
  sweep_thresholds(s, [&](float t, size_t tp, size_t fp) {
    c.precision.push_back((double)tp / (double)(tp + fp));  // tp + fp >= 1: t is someone's score
    c.recall.push_back((double)tp / n_pos);
    c.thresholds.push_back(t);
  });
  return c;
}

double auprc(const std::vector<float>& scores, const std::vector<int>& labels) {
  const SplitScores s = split_scores("auprc", scores, labels);
  require_pos("auprc", s.pos.size());
  const double n_pos = (double)s.pos.size();
  double ap = 0;
  size_t tp_prev = 0;
  sweep_thresholds(s, [&](float, size_t tp, size_t fp) {
    // (R_n - R_{n-1}) P_n; thresholds that add only normals add nothing.
    ap += ((double)(tp - tp_prev) / n_pos) * ((double)tp / (double)(tp + fp));
    tp_prev = tp;
  });
  return ap;
}

F1Max f1_max(const std::vector<float>& scores, const std::vector<int>& labels) {
  const SplitScores s = split_scores("f1_max", scores, labels);
  require_pos("f1_max", s.pos.size());
  const size_t n_pos = s.pos.size();
  F1Max best;
  bool first = true;
  sweep_thresholds(s, [&](float t, size_t tp, size_t fp) {
    const double f1 = 2.0 * (double)tp / (double)(tp + fp + n_pos);
    if (first || f1 > best.f1) {  // strict: a tie keeps the higher threshold seen first
      best.f1 = f1;
      best.precision = (double)tp / (double)(tp + fp);
      best.recall = (double)tp / (double)n_pos;
      best.threshold = t;
      first = false;
    }
  });
  return best;
}

double tpr_at_fpr(const std::vector<float>& scores, const std::vector<int>& labels, double fpr) {
  RECON_CHECK(fpr >= 0.0 && fpr <= 1.0, "tpr_at_fpr: fpr must be in [0, 1], got " << fpr);
  const SplitScores s = split_scores("tpr_at_fpr", scores, labels);
  require_both("tpr_at_fpr", s.pos.size(), s.neg.size());
  const double n_pos = (double)s.pos.size(), n_neg = (double)s.neg.size();
  // (x0, y0): the last point with FPR <= fpr (the highest such TPR, since the
  // curve is monotone); the first point past it closes the segment.
  double x0 = 0, y0 = 0, result = -1;
  sweep_thresholds(s, [&](float, size_t tp, size_t fp) {
    if (result >= 0) return;
    const double x = (double)fp / n_neg, y = (double)tp / n_pos;
    if (x <= fpr) {
      x0 = x;
      y0 = y;
    } else {
      result = y0 + (y - y0) * (fpr - x0) / (x - x0);
    }
  });
  return result >= 0 ? result : y0;  // no point past fpr: the curve ended at (1, 1)
}

double pixel_auroc(const Tensor& maps, const Tensor& masks) {
  check_maps_masks("pixel_auroc", maps, masks);
  const HostValues m(maps), g(masks);
  const size_t n = (size_t)maps.numel();
  SplitScores s;
  size_t n_pos = 0;
  for (size_t i = 0; i < n; ++i) n_pos += mask_label("pixel_auroc", g.ptr[i], i);
  s.pos.reserve(n_pos);
  s.neg.reserve(n - n_pos);
  for (size_t i = 0; i < n; ++i) {
    RECON_CHECK(!std::isnan(m.ptr[i]), "pixel_auroc: the map value at flat index " << i << " is NaN");
    (g.ptr[i] == 1.f ? s.pos : s.neg).push_back(m.ptr[i]);
  }
  require_both("pixel_auroc", s.pos.size(), s.neg.size(), "pixels");
  sort_decreasing(s.pos);
  sort_decreasing(s.neg);
  return roc_area(s);
}

int label_components(const std::vector<uint8_t>& mask, int height, int width, std::vector<int32_t>& labels,
                     int connectivity) {
  RECON_CHECK(connectivity == 4 || connectivity == 8,
              "label_components: connectivity must be 4 or 8, got " << connectivity);
  RECON_CHECK(height >= 0 && width >= 0 && mask.size() == (size_t)height * width,
              "label_components: mask holds " << mask.size() << " values, not " << height << " x " << width);
  labels.assign(mask.size(), 0);
  static constexpr int kDy[8] = {-1, 1, 0, 0, -1, -1, 1, 1};  // the 4 edge neighbours first, then the diagonals
  static constexpr int kDx[8] = {0, 0, -1, 1, -1, 1, -1, 1};
  std::vector<int32_t> stack;  // flat indices still to expand
  int count = 0;
  for (int start = 0; start < height * width; ++start) {
    if (!mask[start] || labels[start]) continue;
    ++count;
    labels[start] = count;
    stack.push_back(start);
    while (!stack.empty()) {
      const int p = stack.back();
      stack.pop_back();
      const int y = p / width, x = p % width;
      for (int k = 0; k < connectivity; ++k) {
        const int ny = y + kDy[k], nx = x + kDx[k];
        if (ny < 0 || ny >= height || nx < 0 || nx >= width) continue;
        const int q = ny * width + nx;
        if (mask[q] && !labels[q]) {
          labels[q] = count;
          stack.push_back(q);
        }
      }
    }
  }
  return count;
}

double aupro(const Tensor& maps, const Tensor& masks, double max_fpr, int connectivity) {
  check_maps_masks("aupro", maps, masks);
  RECON_CHECK(max_fpr > 0.0 && max_fpr <= 1.0, "aupro: max_fpr must be in (0, 1], got " << max_fpr);
  const Shape& sh = maps.shape();
  RECON_CHECK(sh.size() == 3 || (sh.size() == 4 && sh[1] == 1),
              "aupro: maps must be (N, H, W) or (N, 1, H, W), got " << shape_str(sh));
  const int64_t n_img = sh[0], h = sh[sh.size() - 2], w = sh[sh.size() - 1];
  const size_t plane = (size_t)(h * w);
  const HostValues m(maps), g(masks);

  // Normal pixels' scores; anomalous pixels as (score, size of their region).
  struct RegionPixel {
    float score;
    uint32_t region_size;
  };
  std::vector<float> neg;
  std::vector<RegionPixel> pos;
  size_t n_regions = 0;
  std::vector<uint8_t> bin(plane);
  std::vector<int32_t> labels;
  std::vector<uint32_t> sizes;
  for (int64_t b = 0; b < n_img; ++b) {
    const float* mp = m.ptr + b * plane;
    const float* gp = g.ptr + b * plane;
    for (size_t i = 0; i < plane; ++i) {
      bin[i] = mask_label("aupro", gp[i], b * plane + i);
      RECON_CHECK(!std::isnan(mp[i]), "aupro: the map value at flat index " << b * plane + i << " is NaN");
    }
    const int count = label_components(bin, (int)h, (int)w, labels, connectivity);
    n_regions += count;
    sizes.assign(count + 1, 0);
    for (size_t i = 0; i < plane; ++i) ++sizes[labels[i]];
    for (size_t i = 0; i < plane; ++i) {
      if (labels[i] == 0) neg.push_back(mp[i]);
      else pos.push_back({mp[i], sizes[labels[i]]});
    }
  }
  RECON_CHECK(!neg.empty(), "aupro: needs a normal pixel (every mask pixel is 1)");
  RECON_CHECK(n_regions > 0, "aupro: needs an anomalous region (every mask pixel is 0)");
  sort_decreasing(neg);
  std::sort(pos.begin(), pos.end(), [](const RegionPixel& a, const RegionPixel& b) { return a.score > b.score; });

  // Sweep the distinct thresholds, highest first; integrate PRO over FPR.
  const double n_neg = (double)neg.size(), n_reg = (double)n_regions;
  double area = 0, x0 = 0, y0 = 0, overlap_sum = 0;  // overlap_sum: sum over regions of their overlap
  size_t i = 0, j = 0;
  while (i < pos.size() || j < neg.size()) {
    float t;
    if (i == pos.size()) t = neg[j];
    else if (j == neg.size()) t = pos[i].score;
    else t = std::max(pos[i].score, neg[j]);
    for (; i < pos.size() && pos[i].score == t; ++i) overlap_sum += 1.0 / (double)pos[i].region_size;
    while (j < neg.size() && neg[j] == t) ++j;
    const double x = (double)j / n_neg, y = overlap_sum / n_reg;
    if (x >= max_fpr) {  // the segment reaching max_fpr (x0 < max_fpr <= x): cut it there
      const double y_cut = y0 + (y - y0) * (max_fpr - x0) / (x - x0);
      area += 0.5 * (y0 + y_cut) * (max_fpr - x0);
      return area / max_fpr;
    }
    area += 0.5 * (y0 + y) * (x - x0);
    x0 = x;
    y0 = y;
  }
  RECON_FAIL("aupro: internal error: the curve ended before FPR 1");
}

}  // namespace recon::eval
