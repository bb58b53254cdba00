#!/usr/bin/python3
"""Writes tests/fixtures/metrics_sklearn.json: reference values of the metrics
in eval/metrics for tests/test_eval_metrics.cpp, computed by scikit-learn and
numpy/scipy (Debian's python3-sklearn; run with /usr/bin/python3, whose
packages a pyenv python3 earlier on PATH cannot see).

Image sets (random, seeded, with ties): roc_auc_score, average_precision_score,
F1-max over precision_recall_curve, TPR at FPR 0.05 / 0.1 read off roc_curve's
polyline. Pixel sets: roc_auc_score over all pixels, and AUPRO up to FPR 0.3
recomputed the way the MVTec AD reference code does it (scipy.ndimage.label
with a 3x3 structure of ones, i.e. 8-connectivity; also 4-connectivity).

    /usr/bin/python3 bench/reference/make_metrics_fixture.py [out.json]
"""
import json
import os
import sys

import numpy as np
import scipy
import sklearn
from scipy import ndimage
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

FPR_TARGETS = [0.05, 0.1]


def f32_list(a):
    # float32 values written as the doubles they are, so C++ reads them back exactly
    return [float(v) for v in np.asarray(a, dtype=np.float32)]


def tpr_at_fpr(fpr, tpr, target):
    """The highest TPR of the ROC polyline at FPR = target (written independently
    of the C++ sweep: every segment that spans the target is evaluated)."""
    best = -1.0
    for i in range(len(fpr) - 1):
        x0, x1, y0, y1 = fpr[i], fpr[i + 1], tpr[i], tpr[i + 1]
        if x0 <= target <= x1:
            v = max(y0, y1) if x1 == x0 else y0 + (y1 - y0) * (target - x0) / (x1 - x0)
            best = max(best, v)
    assert best >= 0
    return best


def f1_max(labels, scores):
    precision, recall, thresholds = precision_recall_curve(labels, scores)
    p, r = precision[:-1], recall[:-1]  # the last point (recall 0, precision 1) has no threshold
    denom = p + r
    f1 = np.where(denom > 0, 2 * p * r / np.where(denom > 0, denom, 1), 0.0)
    best = f1.max()
    # Among equal F1 (up to rounding) the highest threshold, as eval::f1_max.
    idx = [i for i in range(len(f1)) if f1[i] >= best - 1e-12]
    i = max(idx, key=lambda k: thresholds[k])
    return float(best), float(thresholds[i])


def image_set(name, labels, scores):
    labels = np.asarray(labels, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float32)
    assert labels.min() == 0 and labels.max() == 1
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    f1, thr = f1_max(labels, scores)
    return {
        "name": name,
        "labels": [int(v) for v in labels],
        "scores": f32_list(scores),
        "roc_auc": float(roc_auc_score(labels, scores)),
        "average_precision": float(average_precision_score(labels, scores)),
        "f1_max": f1,
        "f1_threshold": thr,
        "tpr_at_fpr": [{"fpr": t, "tpr": float(tpr_at_fpr(fpr, tpr, t))} for t in FPR_TARGETS],
    }


def trapezoid(x, y, x_max):
    """Area under (x, y) up to x_max, the last segment cut by linear
    interpolation (the MVTec AD reference's trapezoid with x_max)."""
    x, y = np.asarray(x), np.asarray(y)
    correction = 0.0
    if x_max not in x:
        ins = int(np.searchsorted(x, x_max, side="right"))
        y_interp = y[ins - 1] + (y[ins] - y[ins - 1]) * (x_max - x[ins - 1]) / (x[ins] - x[ins - 1])
        correction = 0.5 * (y_interp + y[ins - 1]) * (x_max - x[ins - 1])
    keep = x <= x_max
    x, y = x[keep], y[keep]
    return float(np.sum(0.5 * (y[1:] + y[:-1]) * (x[1:] - x[:-1])) + correction)


def aupro(maps, masks, max_fpr, structure):
    fp_change = np.zeros(maps.shape, dtype=np.float64)
    pro_change = np.zeros(maps.shape, dtype=np.float64)
    n_ok = 0
    n_regions = 0
    for b in range(maps.shape[0]):
        labeled, n = ndimage.label(masks[b], structure=structure)
        n_regions += n
        ok = labeled == 0
        n_ok += int(ok.sum())
        fp_change[b][ok] = 1
        for k in range(1, n + 1):
            region = labeled == k
            pro_change[b][region] = 1.0 / region.sum()
    order = np.argsort(-maps.ravel(), kind="stable")
    s = maps.ravel()[order]
    fprs = np.cumsum(fp_change.ravel()[order]) / n_ok
    pros = np.cumsum(pro_change.ravel()[order]) / n_regions
    keep = np.append(np.diff(s) != 0, True)  # one point per distinct score
    fprs = np.concatenate([[0.0], fprs[keep]])
    pros = np.concatenate([[0.0], pros[keep]])
    return trapezoid(fprs, pros, max_fpr) / max_fpr


def pixel_set(name, rng):
    n, h, w = 3, 16, 16
    masks = np.zeros((n, h, w), dtype=np.uint8)
    masks[0, 2:6, 3:9] = 1                     # a rectangle
    masks[0, 9, 9] = masks[0, 10, 10] = masks[0, 11, 11] = 1  # a diagonal: one region (8) or three (4)
    masks[1, 12:15, 1:3] = 1
    masks[1, 4, 12:16] = 1                     # touches the border
    # image 2 is all normal
    maps = rng.random((n, h, w)) * 0.6 + masks * rng.random((n, h, w)) * 0.5
    maps = np.round(maps * 32) / 32            # coarse levels: many ties
    maps = maps.astype(np.float32)
    eight, four = np.ones((3, 3), dtype=int), ndimage.generate_binary_structure(2, 1)
    return {
        "name": name,
        "shape": [n, h, w],
        "maps": f32_list(maps.ravel()),
        "masks": [int(v) for v in masks.ravel()],
        "pixel_auroc": float(roc_auc_score(masks.ravel(), maps.ravel())),
        "aupro_0.3_conn8": aupro(maps.astype(np.float64), masks, 0.3, eight),
        "aupro_0.3_conn4": aupro(maps.astype(np.float64), masks, 0.3, four),
        "aupro_1.0_conn8": aupro(maps.astype(np.float64), masks, 1.0, eight),
    }


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(__file__), "..", "..", "tests", "fixtures", "metrics_sklearn.json")
    rng = np.random.default_rng(20240611)
    sets = []
    # Continuous scores, balanced, shifted anomalies; a few forced duplicates.
    labels = rng.integers(0, 2, 40)
    scores = rng.normal(0, 1, 40) + 0.8 * labels
    scores[5] = scores[6]
    scores[11] = scores[20] = scores[30]
    sets.append(image_set("continuous_balanced", labels, scores))
    # Coarse scores (one decimal): heavy ties across classes.
    labels = rng.integers(0, 2, 50)
    scores = np.round(rng.random(50) * 0.7 + 0.3 * labels, 1)
    sets.append(image_set("one_decimal_ties", labels, scores))
    # Integer scores 0..4: almost everything tied.
    labels = np.array([0] * 15 + [1] * 10)
    scores = np.concatenate([rng.integers(0, 4, 15), rng.integers(1, 5, 10)]).astype(np.float32)
    sets.append(image_set("integer_levels", labels, scores))
    # Imbalanced: 8 anomalies, 72 normals (FPR steps of 1/72).
    labels = np.array([0] * 72 + [1] * 8)
    scores = np.concatenate([rng.normal(0, 1, 72), rng.normal(1.5, 1, 8)])
    perm = rng.permutation(80)
    sets.append(image_set("imbalanced", labels[perm], scores[perm]))
    # 20 normals, so FPR 0.05 and 0.1 land exactly on curve points (1 and 2 false positives).
    labels = np.array([0] * 20 + [1] * 12)
    scores = np.round(np.concatenate([rng.normal(0, 1, 20), rng.normal(1, 1, 12)]), 2)
    perm = rng.permutation(32)
    sets.append(image_set("fpr_on_grid", labels[perm], scores[perm]))

    fixture = {
        "generator": "bench/reference/make_metrics_fixture.py",
        "versions": {"sklearn": sklearn.__version__, "numpy": np.__version__, "scipy": scipy.__version__},
        "image_sets": sets,
        "pixel_sets": [pixel_set("three_images_16x16", rng)],
    }
    with open(out, "w") as f:
        json.dump(fixture, f, indent=1)
        f.write("\n")
    print("wrote", os.path.normpath(out))


if __name__ == "__main__":
    main()
