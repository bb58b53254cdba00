#!/usr/bin/env python3
"""Rebuilds the Fashion-MNIST one-class table from run folders.

Each folder holds the metrics.json a training app wrote: train_multiview
(method 1: its ablation gives AE + MSE, AE + multi-view and AE + multi-view +
difficulty normalisation) or train_twostage (method 2: run.json's fused AUROC
of x_hat and x_tilde). Usage:

  scripts/results_table.py --multiview 'runs/mv10/c*' [--twostage 'runs/ts10/c*'] [--difficulty entropy]

prints a markdown table, one row per normal class and the mean. Only the
standard library is used.
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--multiview", default="", help="glob of train_multiview run folders")
    ap.add_argument("--twostage", default="", help="glob of train_twostage run folders")
    ap.add_argument("--difficulty", default="entropy", help="difficulty measure of the normalised columns")
    args = ap.parse_args()
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
