// Detection and segmentation metrics. Image level: AUROC, the ROC and PR
// curves, average precision, F1-max and TPR at a fixed FPR over image scores
// with labels 0 (normal) / 1 (anomalous). Pixel level: pixel AUROC and AUPRO
// over anomaly maps and binary ground-truth masks. A higher score always means
// "more anomalous"; a sample is predicted anomalous at threshold t when its
// score is >= t. All metrics are exact and tie-aware: samples with equal
// scores enter the curves together, at one threshold.
#pragma once
#include <cstdint>
#include <vector>

#include "runtime/tensor.hpp"

namespace recon::eval {

// Area under the ROC curve, exact and tie-aware: the probability that a
// random anomaly scores above a random normal, ties counting one half (the
// Mann-Whitney U statistic divided by n0 n1; Hanley & McNeil 1982). Throws
// when a class is empty or the sizes differ.
double auroc(const std::vector<float>& scores, const std::vector<int>& labels);

// The ROC curve as sklearn.metrics.roc_curve(drop_intermediate=False) draws
// it: one point per distinct score, thresholds decreasing, preceded by the
// point (0, 0) at threshold +inf. Needs both classes.
struct RocCurve {
  std::vector<double> fpr;        // false positives / normals
  std::vector<double> tpr;        // true positives / anomalies
  std::vector<float> thresholds;  // thresholds[0] = +inf
};
RocCurve roc_curve(const std::vector<float>& scores, const std::vector<int>& labels);

// The precision-recall curve: one point per distinct score, thresholds
// decreasing (so recall increases). Unlike sklearn's precision_recall_curve
// it neither reverses the order nor appends the (recall 0, precision 1)
// anchor: point i belongs to thresholds[i]. Needs at least one anomaly.
struct PrCurve {
  std::vector<double> precision;  // true positives / predicted positives
  std::vector<double> recall;     // true positives / anomalies
  std::vector<float> thresholds;
};
PrCurve pr_curve(const std::vector<float>& scores, const std::vector<int>& labels);

// Average precision, as sklearn.metrics.average_precision_score: the sum over
// the distinct thresholds of (R_n - R_{n-1}) P_n with R_0 = 0 (a step
// integral of the PR curve, no interpolation; Manning, Raghavan & Schuetze,
// "Introduction to Information Retrieval", 2008, ch. 8.4). Needs at least one
// anomaly; 1 when there are no normals.
double auprc(const std::vector<float>& scores, const std::vector<int>& labels);

// The best F1 = 2PR / (P + R) = 2 TP / (TP + FP + n_anomalies) over the
// thresholds of the PR curve, with the threshold that reaches it (predict
// anomalous when score >= threshold). Among thresholds with the same F1 the
// highest wins. Needs at least one anomaly.
struct F1Max {
  double f1 = 0;
  double precision = 0;
  double recall = 0;
  float threshold = 0;
};
F1Max f1_max(const std::vector<float>& scores, const std::vector<int>& labels);

// TPR at a false-positive rate `fpr` in [0, 1], read off the ROC polyline
// (roc_curve's points joined by straight lines, as a plot draws them): between
// two points it interpolates linearly, and where the curve is vertical at
// exactly `fpr` (several thresholds with the same FPR) it takes the highest
// TPR there. Interpolating means a randomised choice between the two
// neighbouring thresholds; the best single threshold with FPR <= fpr can be
// lower. Needs both classes.
double tpr_at_fpr(const std::vector<float>& scores, const std::vector<int>& labels, double fpr);

// ---- pixel level ----------------------------------------------------------------
// maps: anomaly maps, masks: ground truth of the same shape whose values are
// exactly 0 (normal pixel) or 1 (anomalous pixel); any device (copied to the
// host unless already a contiguous CPU tensor).

// AUROC over all pixels of all images (pooled, not averaged per image), with
// the same tie handling as auroc(). Sorts the scores of each class as floats
// (4 bytes a pixel beside the inputs), then one merge sweep. Needs both
// classes.
double pixel_auroc(const Tensor& maps, const Tensor& masks);

// Labels the connected components of a binary mask (H, W), row-major,
// nonzero = foreground. labels (resized to H W) gets 0 on background and
// 1..count on the components, numbered in raster order of their first pixel.
// connectivity: 8 (diagonal neighbours connect) or 4. Returns count.
int label_components(const std::vector<uint8_t>& mask, int height, int width,
                     std::vector<int32_t>& labels, int connectivity = 8);

// Area under the per-region-overlap (PRO) curve up to a false-positive rate
// `max_fpr`, divided by `max_fpr` (so 1 is perfect); Bergmann, Batzner,
// Fauser, Sattlegger & Steger, "The MVTec Anomaly Detection Dataset: A
// Comprehensive Real-World Dataset for Unsupervised Anomaly Detection", IJCV
// 129, 2021, section 5.2. The ground-truth regions are the connected
// components of every mask (8-connectivity by default, as the MVTec AD
// reference code: scipy.ndimage.label with a 3x3 structure of ones). At a
// threshold t, a region's overlap is the fraction of its pixels with score >=
// t; PRO(t) is the mean overlap over all regions of all images (each region
// weighs the same, whatever its size), FPR(t) the fraction of normal pixels
// (mask 0, in all images) with score >= t. The curve starts at (0, 0), runs
// through one point per distinct score, and is integrated with the trapezoid
// rule up to max_fpr, the last segment cut by linear interpolation (as the
// reference). maps, masks: (N, H, W) or (N, 1, H, W). Needs a normal pixel and
// a region; max_fpr in (0, 1].
double aupro(const Tensor& maps, const Tensor& masks, double max_fpr = 0.3, int connectivity = 8);

}  // namespace recon::eval
