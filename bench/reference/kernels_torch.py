#!/usr/bin/env python3
"""PyTorch side of bench/bench_kernels' composite rows, for machines where
the C++ LibTorch twin is not built (run_gpu.sh uses it on the GPU box with
the machine's Python torch): the SSIM loss forward + backward (reflect pad,
two grouped conv2d passes, the SSIM formula, autograd), the image entropy
(scatter_add histogram), the local entropy (one-hot planes box-filtered by
avg_pool2d) and the information reduction forward + backward of sum(z) + kl
with a sampled z, at the same shapes and on the same inputs.

    bench_kernels --export DIR ...          # inputs + ReconAD's values
    kernels_torch.py DIR --device cuda --json torch_kernels.json \\
        [--ours bench_kernels.json]          # one table with the ratio

The SSIM, entropy and information-reduction composites and their timed
steps (op_step) are twostage_torch.py's (imported from there: one place for
each); the local entropy is written here, as in torch_twin.cpp. Before timing, every case is
validated against ReconAD's exported values (loss and both gradients of the
SSIM, the entropies, kl and its gradients with z = mu; max |ours - torch| <=
2e-3 max |torch| + 1e-6; exit 1 otherwise). On CUDA each run is timed with
CUDA events after a 256 MiB write that flushes the L2, as bench_kernels
does; on the CPU with perf_counter. Median of --runs after --warmup.
GB/s counts the same minimum bytes as bench_kernels (inputs read once,
outputs written once).
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from twostage_torch import (ATOL, TOL, image_entropy, information_reduction,  # noqa: E402
                            op_step, read_safetensors, ssim_map)

OPS = ["ssim_fwd_bwd", "image_entropy", "local_entropy", "info_red_fwd_bwd"]
FLUSH_BYTES = 256 << 20  # > the 50 MiB L2 of an H100/H200


def local_entropy(x, k, bins):
    """Entropy in bits of the k x k window (reflect padding) of the gray image, `bins` levels."""
    gray = x.mean(1, keepdim=True)
    b = torch.clamp(torch.floor(gray * bins), 0, bins - 1).long()
    onehot = torch.zeros(x.shape[0], bins, x.shape[2], x.shape[3], device=x.device).scatter_(1, b, 1.0)
    r = k // 2
    p = F.avg_pool2d(F.pad(onehot, (r, r, r, r), mode="reflect"), k, stride=1)
    return -torch.where(p > 0, p * torch.log2(p), torch.zeros_like(p)).sum(1, keepdim=True)


def min_bytes(op, image, latent):
    img, lat, n, plane = image.numel(), latent.numel(), image.shape[0], image.shape[2] * image.shape[3]
    return 4.0 * {0: 4 * img, 1: img + n, 2: img + n * plane, 3: 5 * lat}[op]


def max_rel_error(got, want):
    got, want = got.detach().double().cpu().reshape(-1), want.double().reshape(-1)
    if got.numel() != want.numel():
        return float("inf")
    diff = (got - want).abs().max().item() if want.numel() else 0.0
    return diff / (want.abs().max().item() + ATOL / TOL) if diff == diff else float("inf")


def validate(name, a, b, mu, logvar, k, bins, expected):
    a, b = a.clone().requires_grad_(True), b.clone().requires_grad_(True)
    mu, logvar = mu.clone().requires_grad_(True), logvar.clone().requires_grad_(True)
    loss = 1 - ssim_map(a, b).mean()
    ga, gb = torch.autograd.grad(loss, [a, b])
    _, kl = information_reduction(mu, logvar, False)
    gmu, glv = torch.autograd.grad(kl, [mu, logvar])
    with torch.no_grad():
        ent, loc = image_entropy(a), local_entropy(a, k, bins)
    got = {"ssim_loss": loss, "ssim_loss.grad_a": ga, "ssim_loss.grad_b": gb, "entropy": ent,
           "local_entropy": loc, "kl": kl, "kl.grad_mu": gmu, "kl.grad_logvar": glv}
    worst = 0.0
    for key, t in got.items():
        e = max_rel_error(t, expected[f"{name}.{key}"])
        if not e <= TOL:
            raise SystemExit(f"kernels_torch.py: {name}: {key} disagrees with ReconAD "
                             f"(max error {e:.3g} of max |value|, tolerance {TOL:g})")
        worst = max(worst, e)
    return worst


def make_step(op, a, b, mu, logvar, k, bins):
    a, b = a.clone().requires_grad_(True), b.clone().requires_grad_(True)
    mu, logvar = mu.clone().requires_grad_(True), logvar.clone().requires_grad_(True)

    if op == 2:
        def step():
            with torch.no_grad():
                local_entropy(a, k, bins)
        return step
    which = {0: 0, 1: 1, 3: 2}[op]  # twostage_torch.op_step's SSIM, entropy, information reduction
    return lambda: op_step(which, a, b, mu, logvar)


def median_ms(step, device, warmup, runs, flush):
    for _ in range(warmup):
        step()
    times = []
    if device.type == "cuda":
        torch.cuda.synchronize()
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        for i in range(runs):
            flush.fill_(i & 0xFF)
            start.record()
            step()
            stop.record()
            stop.synchronize()
            times.append(start.elapsed_time(stop))
    else:
        for _ in range(runs):
            t0 = time.perf_counter()
            step()
            times.append(1e3 * (time.perf_counter() - t0))
    times.sort()
    return times[len(times) // 2]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", help="bench_kernels --export DIR")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (CPU)")
    ap.add_argument("--json", help="write the torch results here")
    ap.add_argument("--ours", help="bench_kernels' --json output: print the joined table with the ratio")
    args = ap.parse_args()
    if args.runs < 1 or args.warmup < 0:
        raise SystemExit("kernels_torch.py: --runs must be positive and --warmup not negative")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    values, meta = read_safetensors(os.path.join(args.dir, "kernels.safetensors"))
    k, bins = int(meta["local_k"]), int(meta["local_bins"])
    cases = []
    for entry in meta["cases"].split(";"):
        name, image, latent = entry.split(":")
        cases.append((name, [int(v) for v in image.split(",")], [int(v) for v in latent.split(",")]))
    flush = torch.empty(FLUSH_BYTES // 4, device=device) if device.type == "cuda" else None

    results, validation = [], {}
    for name, image, latent in cases:
        a, b = (values[f"{name}.{t}"].reshape(image).to(device) for t in ("a", "b"))
        mu, logvar = (values[f"{name}.{t}"].reshape(latent).to(device) for t in ("mu", "logvar"))
        validation[name] = validate(name, a, b, mu, logvar, k, bins, values)
        for op, op_name in enumerate(OPS):
            ms = median_ms(make_step(op, a, b, mu, logvar, k, bins), device, args.warmup, args.runs, flush)
            nbytes = min_bytes(op, a, mu)
            results.append({"case": name, "op": op_name, "shape": image, "ms": ms, "bytes": nbytes,
                            "gbs": nbytes / (ms * 1e6)})

    dev_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"kernels_torch.py: torch {torch.__version__} on {dev_name}, median of {args.runs} after {args.warmup} "
          f"warm-up{', CUDA events, L2 flushed before each' if device.type == 'cuda' else ''}")
    print("validated against ReconAD (max relative error): " +
          " ".join(f"{n} {e:.1e}" for n, e in validation.items()))
    out = {"bench": "kernels_torch", "device": dev_name, "torch": torch.__version__, "runs": args.runs,
           "validation": validation, "results": results}
    ours = {}
    if args.ours:
        with open(args.ours) as f:
            for r in json.load(f).get("composites", {}).get("results", []):
                ours[(r["case"], r["op"])] = r
    print(f"{'case':12} {'op':17} {'ReconAD ms':>10} {'GB/s':>9} {'peak':>7} {'torch ms':>10} {'GB/s':>9} "
          f"{'ratio':>7}")
    for r in results:
        o = ours.get((r["case"], r["op"]))
        if o:
            share = f"{100 * o['peak_share']:6.1f}%" if "peak_share" in o else f"{'-':>7}"
            r.update({"recon_ms": o["ms"], "ratio": r["ms"] / o["ms"]})
            print(f"{r['case']:12} {r['op']:17} {o['ms']:10.4f} {o['gbs']:9.2f} {share} {r['ms']:10.4f} "
                  f"{r['gbs']:9.2f} {r['ms'] / o['ms']:6.2f}x")
        else:
            print(f"{r['case']:12} {r['op']:17} {'-':>10} {'-':>9} {'-':>7} {r['ms']:10.4f} {r['gbs']:9.2f} {'-':>7}")
    print("ratio = torch ms / ReconAD ms (> 1: ReconAD faster); GB/s: minimum bytes (inputs read once, "
          "outputs written once) / time")
    print(json.dumps(out))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f)
            f.write("\n")


if __name__ == "__main__":
    main()
