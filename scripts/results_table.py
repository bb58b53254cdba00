#!/usr/bin/env python3
"""Rebuilds the results tables (Fashion-MNIST one-class, PIPED) from run folders.

Fashion-MNIST: each folder holds the metrics.json a training app wrote:
train_multiview (method 1: its ablation gives AE + MSE, AE + multi-view and
AE + multi-view + difficulty normalisation) or train_twostage (method 2:
run.json's fused AUROC of x_hat and x_tilde). Usage:

  scripts/results_table.py --multiview 'runs/mv10/c*' [--twostage 'runs/ts10/c*'] [--difficulty entropy]

PIPED (results/piped.md): the folder of a train_twostage --dataset piped
--all-classes run; every finished class has <folder>/class_<c>/result.json
(a run resumed in pieces has all of them, whatever run.json says):

  scripts/results_table.py --piped runs/piped/m2

prints a markdown table, one row per class and the mean. Only the standard
library is used.
"""
import argparse
import glob
import json
import os
import sys

FMNIST = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
          "Ankle boot"]


def load(path):
    with open(path) as f:
        return json.load(f)


def multiview_rows(pattern, measure):
    rows = {}
    for d in sorted(glob.glob(pattern)):
        p = os.path.join(d, "metrics.json")
        if not os.path.exists(p):
            continue
        m = load(p)
        if m.get("app") != "train_multiview":
            sys.exit(f"{p}: not a train_multiview metrics.json")
        a = m["ablation"][measure]
        rows[int(m["normal_class"])] = {
            "AE + MSE": a["none"]["mse"],
            "AE + multi-view": a["none"]["fused"],
            f"+ {measure} ratio": a["ratio"]["fused"],
            f"+ {measure} residual": a["residual"]["fused"],
        }
    return rows


def twostage_rows(pattern):
    rows = {}
    for d in sorted(glob.glob(pattern)):
        p = os.path.join(d, "run.json")
        if not os.path.exists(p):
            continue
        r = load(p)
        for c in r.get("classes", []):
            a = c["image_auroc"]
            rows[int(c["class"]) if str(c["class"]).isdigit() else c["class"]] = {
                "two-stage (x̂)": a["x_hat"]["fused"],
                "two-stage + refinement (x̃)": a["x_tilde"]["fused"],
            }
    return rows


def piped_table(folder):
    """Image AUROC, pixel AUROC and AUPRO of x_hat and x_tilde per PIPED class."""
    paths = sorted(glob.glob(os.path.join(folder, "class_*", "result.json")))
    if not paths:
        sys.exit(f"{folder}: no class_*/result.json (not a finished train_twostage --all-classes class yet)")
    # The method's score is the fused one; raw MSE (no calibration) and the
    # difficulty measure alone are shown beside it, as train_twostage prints them.
    cols = ["image AUROC x̂", "image AUROC x̃", "pixel AUROC x̂", "pixel AUROC x̃", "AUPRO x̂", "AUPRO x̃",
            "raw MSE x̃ (image)", "difficulty alone (image)", "rotation acc. (held-out)", "minutes"]
    rows = []
    for p in paths:
        r = load(p)
        for key in ("image_auroc", "pixel", "training", "stage_seconds"):
            if key not in r:
                sys.exit(f"{p}: no '{key}' (a train_twostage result.json of a scored run?)")
        a, px = r["image_auroc"], r["pixel"]
        secs = sum(r["stage_seconds"].values()) + r.get("score_seconds", 0.0)
        rows.append((r["class"], [a["x_hat"]["fused"], a["x_tilde"]["fused"], px["x_hat"]["pixel_auroc"],
                                  px["x_tilde"]["pixel_auroc"], px["x_hat"]["aupro"], px["x_tilde"]["aupro"],
                                  a["x_tilde"]["mse_raw"], r["difficulty_auroc"],
                                  r["training"]["rotnet"][-1]["heldout_rotation_accuracy"], secs / 60.0]))
    print_class_table(cols, rows)


def print_class_table(cols, rows):
    """One row per class (the last column: minutes, summed), then the means."""
    print("| class | " + " | ".join(cols) + " |")
    print("|---|" + "---:|" * len(cols))
    for name, v in rows:
        print(f"| {name} | " + " | ".join(f"{x:.4f}" for x in v[:-1]) + f" | {v[-1]:.1f} |")
    means = [sum(v[i] for _, v in rows) / len(rows) for i in range(len(cols) - 1)]
    total = sum(v[-1] for _, v in rows)
    print(f"| **mean ({len(rows)} classes)** | " + " | ".join(f"**{m:.4f}**" for m in means) +
          f" | {total:.1f} (sum) |")


def piped_multiview_table(pattern, measure):
    """Method 1 on PIPED: train_multiview's image ablation per class folder
    (metrics.json) and the pixel metrics recon_eval wrote for its checkpoint
    (eval/metrics.json, the checkpoint's residual normalisation)."""
    cols = ["AE + MSE", "AE + multi-view", "+ entropy ratio", "+ entropy residual", "pixel AUROC", "AUPRO",
            "minutes"]
    rows = []
    for d in sorted(glob.glob(pattern)):
        p, e = os.path.join(d, "metrics.json"), os.path.join(d, "eval", "metrics.json")
        if not (os.path.exists(p) and os.path.exists(e)):
            continue
        m, ev = load(p), load(e)
        if m.get("app") != "train_multiview" or ev.get("app") != "recon_eval":
            sys.exit(f"{d}: expected train_multiview's metrics.json and recon_eval's eval/metrics.json")
        a = m["ablation"][measure]
        rows.append((m["category"], [a["none"]["mse"], a["none"]["fused"], a["ratio"]["fused"],
                                     a["residual"]["fused"], ev["pixel"]["auroc"], ev["pixel"]["aupro"],
                                     (m["train_seconds"] + m["eval_seconds"]) / 60.0]))
    if not rows:
        sys.exit(f"{pattern}: no folder with metrics.json and eval/metrics.json")
    print_class_table(cols, rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--multiview", default="", help="glob of train_multiview run folders")
    ap.add_argument("--twostage", default="", help="glob of train_twostage run folders")
    ap.add_argument("--difficulty", default="entropy", help="difficulty measure of the normalised columns")
    ap.add_argument("--piped", default="", help="a train_twostage --dataset piped --all-classes run folder")
    ap.add_argument("--piped-multiview", default="",
                    help="glob of train_multiview --dataset piped run folders, each with recon_eval's eval/")
    args = ap.parse_args()
    if args.piped_multiview:
        piped_multiview_table(args.piped_multiview, args.difficulty)
        return
    if args.piped:
        if args.multiview or args.twostage:
            sys.exit("--piped makes its own table; run it without --multiview/--twostage")
        piped_table(args.piped)
        return
    table = {}
    if args.multiview:
        for k, v in multiview_rows(args.multiview, args.difficulty).items():
            table.setdefault(k, {}).update(v)
    if args.twostage:
        for k, v in twostage_rows(args.twostage).items():
            table.setdefault(k, {}).update(v)
    if not table:
        sys.exit("no run folders with metrics found")
    cols = []
    for v in table.values():
        for c in v:
            if c not in cols:
                cols.append(c)
    print("| normal class | " + " | ".join(cols) + " |")
    print("|---|" + "---:|" * len(cols))
    for k in sorted(table):
        name = f"{k} {FMNIST[k]}" if isinstance(k, int) and k < len(FMNIST) else str(k)
        print(f"| {name} | " + " | ".join(f"{table[k][c]:.4f}" if c in table[k] else "" for c in cols) + " |")
    means = []
    for c in cols:
        vals = [table[k][c] for k in table if c in table[k]]
        means.append(f"**{sum(vals) / len(vals):.4f}** ({len(vals)})" if vals else "")
    print("| mean (classes) | " + " | ".join(means) + " |")


if __name__ == "__main__":
    main()
