#!/usr/bin/python3
"""Draws docs/piped_overlays.png: heat-map overlays of method 2 on PIPED.

For each chosen class of a train_twostage --dataset piped --all-classes run,
the first defective test images (by file name, not picked by score) go
through recon_predict with that class's checkpoint (tile mode when the
checkpoint was trained on tiles); each row shows the input, the ground-truth
mask (impurity white) and recon_predict's overlay, captioned with the class,
the score and the decision at the stored threshold. Needs numpy and PIL
(/usr/bin/python3 on the project's machines). Usage:

  /usr/bin/python3 scripts/piped_overlays.py --run runs/piped/m2 \
      --predict runs/piped/bin/recon_predict --out docs/piped_overlays.png
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image, ImageDraw


def mask_path(image_path):
    """PIPED's mask of a defective image: X_S_D_01_1 -> X_S_GT_01_1 (or X_S_GT_1_1) in Defects/GroundTruth
    (or the archive's other spelling, GroundThruth); see data/folder.hpp."""
    folder, name = os.path.split(image_path)
    stem, _ = os.path.splitext(name)
    head, sep, tail = stem.partition("_S_D_")
    if not sep:
        sys.exit(f"{image_path}: not a PIPED defect image name (no _S_D_)")
    num, _, rest = tail.partition("_")
    stems = [f"{head}_S_GT_{num}_{rest}", f"{head}_S_GT_{num.lstrip('0') or '0'}_{rest}"]
    for sub in ("GroundTruth", "GroundThruth"):
        for s in stems:
            for ext in (".bmp", ".png"):
                p = os.path.join(folder, sub, s + ext)
                if os.path.exists(p):
                    return p
    sys.exit(f"{image_path}: no mask found ({', '.join(stems)} under {folder}/GroundTruth|GroundThruth)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="train_twostage --all-classes run folder (class_*/ inside)")
    ap.add_argument("--predict", required=True, help="the recon_predict binary")
    ap.add_argument("--classes", default="", help="comma-separated classes (default: every other class)")
    ap.add_argument("--per-class", type=int, default=1, help="defective test images per class")
    ap.add_argument("--out", required=True, help="the PNG to write")
    args = ap.parse_args()

    dirs = sorted(d for d in glob.glob(os.path.join(args.run, "class_*")) if
                  os.path.exists(os.path.join(d, "test_scores.json")))
    if not dirs:
        sys.exit(f"{args.run}: no finished class (class_*/test_scores.json)")
    by_class = {os.path.basename(d)[len("class_"):]: d for d in dirs}
    classes = args.classes.split(",") if args.classes else sorted(by_class)[::2]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for cls in classes:
            if cls not in by_class:
                sys.exit(f"{args.run}: class {cls} has not finished (finished: {', '.join(sorted(by_class))})")
            d = by_class[cls]
            with open(os.path.join(d, "test_scores.json")) as f:
                tests = json.load(f)
            picks = sorted(t["source"] for t in tests if t["label"] == 1)[:args.per_class]
            out = os.path.join(tmp, cls)
            cmd = [args.predict, "--checkpoint", os.path.join(d, "checkpoint.safetensors"), "--out", out]
            for p in picks:
                cmd += ["--input", p]
            res = subprocess.run(cmd, capture_output=True, text=True,
                                 env=dict(os.environ, OMP_NUM_THREADS="1"))
            if res.returncode != 0:
                sys.exit(f"recon_predict failed on {cls}:\n{res.stderr}")
            lines = [json.loads(l) for l in res.stdout.splitlines() if l.startswith("{")]
            for p, l in zip(picks, lines):
                img = np.asarray(Image.open(p).convert("RGB"))
                mask = 255 - np.asarray(Image.open(mask_path(p)).convert("L"))  # impurity white
                over = np.asarray(Image.open(l["overlay"]).convert("RGB"))
                cap = f"{cls}  score {l['score']:.1f}  {'anomalous' if l['anomalous'] else 'normal'}"
                rows.append((cap, img, np.stack([mask] * 3, axis=-1), over))

    size, gap, cap_h, head_h = 128, 4, 14, 16
    width = 3 * size + 4 * gap
    height = head_h + len(rows) * (cap_h + size + gap)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    for k, title in enumerate(["input", "ground truth", "heat map overlay"]):
        draw.text((gap + k * (size + gap) + 2, 2), title, fill="black")
    y = head_h
    for cap, *tiles in rows:
        draw.text((gap + 2, y), cap, fill="black")
        y += cap_h
        for k, t in enumerate(tiles):
            tile = Image.fromarray(t)
            if tile.size != (size, size):  # PIPED has one 127-wide image
                tile = tile.resize((size, size), Image.NEAREST)
            canvas.paste(tile, (gap + k * (size + gap), y))
        y += size + gap
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    # A 256-colour palette keeps the file small (the README's picture, < 300 KB).
    canvas.quantize(colors=256, method=Image.MEDIANCUT, dither=Image.NONE).save(args.out, optimize=True)
    print(f"wrote {args.out}: {len(rows)} images of {len(classes)} classes, {os.path.getsize(args.out)} bytes")


if __name__ == "__main__":
    main()
