#!/usr/bin/env python3
"""PyTorch twin of bench/bench_train (method 2: RotNet, two-stage decoder,
refiner, scoring views, and the SSIM / entropy / information-reduction
composites alone), the same computations as torch_twin.cpp written with
torch.nn.functional, for machines where the C++ LibTorch is not available
(run_gpu.sh uses it on the GPU box with the machine's Python torch).

    bench_train --export DIR ...            # weights + validation values
    twostage_torch.py DIR --device cuda --batches 32,128,256 --json torch.json \
        [--ours bench_train.json]           # the ratio table against ReconAD

It loads DIR/weights.safetensors (ReconAD's state_dict; a tiny safetensors
reader below, no `safetensors` package needed) and DIR/expected.safetensors
(the validation batch, ReconAD's losses, gradients and views, and the
architecture in its metadata), checks that every value agrees within the
tolerance (exit 1 otherwise), then times each stage (median of --runs after
--warmup, synchronised on CUDA) and prints a table plus JSON.
"""
import argparse
import json
import math
import os
import struct
import sys
import time

import torch
import torch.nn.functional as F

TOL, ATOL = 2e-3, 1e-6  # as bench_train: max|ours - torch| <= TOL * max|torch| + ATOL
STAGES = ["rotnet_step", "decoder_step", "refiner_step", "score", "op_ssim_fwd_bwd", "op_entropy",
          "op_info_red_fwd_bwd"]
LATENT_CHANNELS = 4  # the refiner's latent (N, 4, ceil(H/4), ceil(W/4)), as bench_train's op rows


def read_safetensors(path):
    """{name: float32 tensor}, metadata (F32 only: what ReconAD writes)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out = {}
    for name, e in header.items():
        if e["dtype"] != "F32":
            raise SystemExit(f"{path}: {name} has dtype {e['dtype']}, expected F32")
        b, end = e["data_offsets"]
        t = torch.frombuffer(bytearray(data[base + b:base + end]), dtype=torch.float32)
        out[name] = t.reshape(e["shape"]).clone()
    return out, meta


def ssim_map(x, y, radius=5, sigma=1.5, c1=0.01 ** 2, c2=0.03 ** 2):
    c = x.shape[1]
    d = torch.arange(-radius, radius + 1, dtype=torch.float64, device=x.device)
    g = torch.exp(-d * d / (2 * sigma * sigma))
    g = (g / g.sum()).to(x.dtype)
    k = 2 * radius + 1
    gh = g.view(1, 1, 1, k).expand(5 * c, 1, 1, k).contiguous()
    gv = g.view(1, 1, k, 1).expand(5 * c, 1, k, 1).contiguous()
    s = F.pad(torch.cat([x, y, x * x, y * y, x * y], 1), (radius,) * 4, mode="reflect")
    s = F.conv2d(F.conv2d(s, gh, groups=5 * c), gv, groups=5 * c)
    mx, my, sxx, syy, sxy = s.split(c, 1)
    mx2, my2, mxy = mx * mx, my * my, mx * my
    return ((2 * mxy + c1) * (2 * (sxy - mxy) + c2)) / ((mx2 + my2 + c1) * (sxx - mx2 + syy - my2 + c2))


def image_entropy(x):
    n = x.shape[0]
    bins = torch.clamp(torch.floor(x.reshape(n, -1) * 256), 0, 255).long()
    hist = torch.zeros(n, 256, device=x.device).scatter_add_(1, bins, torch.ones_like(bins, dtype=x.dtype))
    p = hist / bins.shape[1]
    return -torch.where(p > 0, p * torch.log2(p), torch.zeros_like(p)).sum(1)


def information_reduction(mu, logvar, training):
    z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu) if training else mu
    kl = 0.5 * (mu * mu + torch.exp(logvar) - 1 - logvar).sum() / mu.shape[0]
    return z, kl


def rotation_batch(x):
    n = x.shape[0]
    turns = [torch.rot90(x, k, (2, 3)).reshape(n, 1, -1) for k in range(4)]
    images = torch.cat(turns, 1).reshape(4 * n, *x.shape[1:])
    return images, torch.arange(4 * n, device=x.device) % 4


class Method2:
    def __init__(self, path, cfg, device):
        self.path, self.cfg, self.device = path, cfg, device
        self.reset()

    def reset(self):
        w, _ = read_safetensors(self.path)
        self.w = {k: v.to(self.device).requires_grad_("running_" not in k) for k, v in w.items()}
        c = self.cfg
        self.ch, self.sz = [], []
        h, wd, i = c["height"], c["width"], 0
        while f"twostage.rotnet.encoder.{i}.0.weight" in self.w:
            if i > 0:
                h, wd = (h + 1) // 2, (wd + 1) // 2
            self.ch.append(self.w[f"twostage.rotnet.encoder.{i}.0.weight"].shape[0])
            self.sz.append((h, wd))
            i += 1
        lr = c["lr"]
        self.opt = [torch.optim.Adam(self.params(p), lr=lr)
                    for p in ("twostage.rotnet.", "twostage.decoder.", "refiner.")]

    def params(self, prefix):
        return [t for k, t in sorted(self.w.items()) if k.startswith(prefix) and "running_" not in k]

    def names(self, prefix):
        return [k for k in sorted(self.w) if k.startswith(prefix) and "running_" not in k]

    def conv(self, p, h, stride=1):
        return F.conv2d(h, self.w[p + ".weight"], self.w[p + ".bias"], stride, 1)

    def conv_t(self, p, h, stride, op):
        return F.conv_transpose2d(h, self.w[p + ".weight"], self.w[p + ".bias"], stride, 1, op)

    def bn(self, p, h, training):
        w = self.w
        return F.batch_norm(h, w[p + ".running_mean"], w[p + ".running_var"], w[p + ".weight"], w[p + ".bias"],
                            training, 0.1, 1e-5)

    def act(self, h):
        return F.leaky_relu(h, self.cfg["slope"])

    def features(self, h, training):
        for i in range(len(self.ch)):
            p = f"twostage.rotnet.encoder.{i}"
            h = self.act(self.bn(p + ".1", self.conv(p + ".0", h, 1 if i == 0 else 2), training))
        return h

    def head(self, f):
        return F.linear(f.mean((2, 3)), self.w["twostage.rotnet.fc.weight"], self.w["twostage.rotnet.fc.bias"])

    def decode(self, h, training):
        if "twostage.decoder.squeeze.weight" in self.w:  # the bottleneck (models/twostage.hpp)
            w = self.w
            z = F.linear(h.flatten(1), w["twostage.decoder.squeeze.weight"], w["twostage.decoder.squeeze.bias"])
            h = self.act(F.linear(z, w["twostage.decoder.expand.weight"], w["twostage.decoder.expand.bias"])).reshape(h.shape)
        s = len(self.ch) - 1
        for j, i in enumerate(range(s, 0, -1)):
            p = f"twostage.decoder.{j}"
            op = (self.sz[i - 1][0] - (2 * self.sz[i][0] - 1), self.sz[i - 1][1] - (2 * self.sz[i][1] - 1))
            h = self.act(self.bn(p + ".1", self.conv_t(p + ".0", h, 2, op), training))
        return torch.sigmoid(self.conv_t(f"twostage.decoder.{s}.0", h, 1, 0))

    def x_hat(self, x, training):
        with torch.no_grad():
            f = self.features(x, False)
        return self.decode(f, training)

    def refine(self, x, x_hat, training):
        c = self.cfg
        h1, w1 = (c["height"] + 1) // 2, (c["width"] + 1) // 2
        h2, w2 = (h1 + 1) // 2, (w1 + 1) // 2
        xh = x_hat.detach()
        h = self.act(self.conv("refiner.encoder.0", torch.cat([x, xh], 1)))
        h = self.act(self.conv("refiner.encoder.2", h, 2))
        h = self.act(self.conv("refiner.encoder.4", h, 2))
        z, kl = information_reduction(self.conv("refiner.mu", h), self.conv("refiner.logvar", h), training)
        r = self.act(self.conv("refiner.decoder.0", z))
        r = self.act(self.conv_t("refiner.decoder.2", r, 2, (h1 - (2 * h2 - 1), w1 - (2 * w2 - 1))))
        r = self.act(self.conv_t("refiner.decoder.4", r, 2, (c["height"] - (2 * h1 - 1), c["width"] - (2 * w1 - 1))))
        r = self.conv("refiner.decoder.6", r)
        return torch.clamp(xh + r, 0, 1), kl

    def loss(self, stage, x, training=True):
        if stage == 0:
            images, labels = rotation_batch(x)
            return F.cross_entropy(self.head(self.features(images, True)), labels)
        if stage == 1:
            xh = self.x_hat(x, True)
            l = F.mse_loss(xh, x)
            return l + self.cfg["ssim_weight"] * (1 - ssim_map(xh, x).mean()) if self.cfg["ssim_weight"] > 0 else l
        with torch.no_grad():
            xh = self.x_hat(x, False)
        xt, kl = self.refine(x, xh, training)
        recon = (xt - x).pow(2).sum() / x.shape[0]
        return recon + self.cfg["beta"] * kl if self.cfg["beta"] > 0 else recon

    def grads(self, stage, x):
        prefix = ("twostage.rotnet.", "twostage.decoder.", "refiner.")[stage]
        l = self.loss(stage, x, training=False)
        gs = torch.autograd.grad(l, self.params(prefix))
        out = {"loss": l.detach().reshape(1)}
        out.update({"grad." + n: g.flatten() for n, g in zip(self.names(prefix), gs)})
        return out

    def step(self, stage, x):
        opt = self.opt[stage]
        opt.zero_grad(set_to_none=True)
        self.loss(stage, x).backward()
        opt.step()

    def feature_error(self, a, b):
        fa, fb = self.features(a, False).mean((2, 3)), self.features(b, False).mean((2, 3))
        return 1 - (fa * fb).sum(1) / (fa.norm(dim=1).clamp_min(1e-12) * fb.norm(dim=1).clamp_min(1e-12))

    @torch.no_grad()
    def score(self, x):
        xh = self.x_hat(x, False)
        xt = self.refine(x, xh, False)[0]
        images, labels = rotation_batch(x)
        nll = -torch.log_softmax(self.head(self.features(images, False)), 1).gather(1, labels[:, None])
        out = {}
        for tag, r in (("hat", xh), ("tilde", xt)):
            out[tag + ".mse"] = (x - r).pow(2).mean((1, 2, 3))
            out[tag + ".ssim"] = 1 - ssim_map(x, r).mean((1, 2, 3))
            out[tag + ".feature"] = self.feature_error(x, r)
            if tag == "hat":
                out["hat.rotation"] = nll.view(-1, 4).mean(1)
        out["entropy"] = image_entropy(x)
        return out


def ops(a, b):
    a, b = a.clone().requires_grad_(True), b.clone().requires_grad_(True)
    l = 1 - ssim_map(a, b).mean()
    ga, gb = torch.autograd.grad(l, (a, b))
    _, kl = information_reduction(a, b - 0.5, False)
    gm, gl = torch.autograd.grad(kl, (a, b))
    return {"ssim_loss": l.reshape(1), "ssim_loss.grad_a": ga, "ssim_loss.grad_b": gb,
            "entropy": image_entropy(a.detach()), "kl": kl.reshape(1), "kl.grad_mu": gm, "kl.grad_logvar": gl}


def op_step(which, a, b, mu, logvar):
    """The composites alone, as bench_train's op_* rows."""
    if which == 0:
        a.grad = b.grad = None
        (1 - ssim_map(a, b).mean()).backward()
    elif which == 1:
        with torch.no_grad():
            image_entropy(a)
    else:
        mu.grad = logvar.grad = None
        z, kl = information_reduction(mu, logvar, True)
        (z.sum() + kl).backward()


def compare(what, ref, expected):
    worst = 0.0
    for name, t in ref.items():
        key = f"{what}.{name}"
        if key not in expected:
            raise SystemExit(f"twostage_torch: {key} is missing from the ReconAD values")
        want = t.detach().flatten().double().cpu()
        got = expected[key].flatten().double()
        if got.numel() != want.numel():
            raise SystemExit(f"twostage_torch: {key}: {got.numel()} values from ReconAD, {want.numel()} here")
        scale = want.abs().max().item() if want.numel() else 0.0
        diff = (got - want).abs().max().item() if want.numel() else 0.0
        e = diff / (scale + ATOL / TOL)
        if not e <= TOL:
            raise SystemExit(f"twostage_torch: {key} disagrees with ReconAD (max error {diff:.3g} of max |value| {scale:.3g})")
        worst = max(worst, e)
    return worst


def median_ms(f, sync, warmup, runs):
    for _ in range(warmup):
        f()
    sync()
    t = []
    for _ in range(runs):
        t0 = time.perf_counter()
        f()
        sync()
        t.append(1000 * (time.perf_counter() - t0))
    return sorted(t)[runs // 2]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", help="bench_train --export DIR")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batches", default="32,128,256")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (CPU)")
    ap.add_argument("--json", help="write the torch results here")
    ap.add_argument("--ours", help="bench_train's --json output: print the ratio table against it")
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    expected, meta = read_safetensors(os.path.join(a.dir, "expected.safetensors"))
    cfg = {k: float(v) if k in ("slope", "ssim_weight", "beta", "lr") else int(v) for k, v in meta.items()
           if k not in ("data_crc32",)}
    m = Method2(os.path.join(a.dir, "weights.safetensors"), cfg, dev)
    shape = (cfg["validate_batch"], cfg["channels"], cfg["height"], cfg["width"])
    vx, vy = expected["x"].reshape(shape).to(dev), expected["y"].reshape(shape).to(dev)
    validation = {}
    for stage, what in enumerate(("rotnet", "decoder", "refiner")):
        m.reset()
        validation[what] = compare(what, m.grads(stage, vx), expected)
    m.reset()
    validation["score"] = compare("score", m.score(vx), expected)
    validation["ops"] = compare("ops", ops(vx, vy), expected)
    print(f"twostage_torch: torch {torch.__version__} on {dev}, {torch.get_num_threads()} threads; validated against "
          "ReconAD: " + " ".join(f"{k} {v:.1e}" for k, v in validation.items()))
    gen = torch.Generator().manual_seed(0)
    results = []
    for n in [int(b) for b in a.batches.split(",")]:
        x = torch.rand((n,) + shape[1:], generator=gen).to(dev)
        op_a = x.clone().requires_grad_(True)
        op_b = torch.rand((n,) + shape[1:], generator=gen).to(dev).requires_grad_(True)
        lat = (n, LATENT_CHANNELS, (shape[2] + 3) // 4, (shape[3] + 3) // 4)
        mu = (2 * torch.rand(lat, generator=gen) - 1).to(dev).requires_grad_(True)
        logvar = (2 * torch.rand(lat, generator=gen) - 1).to(dev).requires_grad_(True)
        m.reset()
        for s, name in enumerate(STAGES):
            if s >= 4:
                f = lambda s=s: op_step(s - 4, op_a, op_b, mu, logvar)
            else:
                f = (lambda: m.score(x)) if s == 3 else (lambda s=s: m.step(s, x))
            ms = median_ms(f, sync, a.warmup, a.runs)
            results.append({"stage": name, "batch": n, "torch_ms": ms, "torch_images_per_s": 1000 * n / ms})
            print(f"  {name:<20} batch {n:4d}: {ms:9.2f} ms, {1000 * n / ms:9.0f} images/s", flush=True)
    out = {"bench": "train_torch_python", "device": a.device, "torch": torch.__version__,
           "threads": torch.get_num_threads(), "validation": validation, "results": results}
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f)
    if a.ours:
        with open(a.ours) as f:
            ours = {(r["stage"], r["batch"]): r for r in json.load(f)["results"]}
        print(f"\n{'stage':<20} {'batch':>6} {'ReconAD ms':>11} {'ReconAD im/s':>12} {'torch ms':>11} "
              f"{'torch im/s':>12} {'ratio':>7}")
        for r in results:
            o = ours.get((r["stage"], r["batch"]))
            if not o:
                continue
            ratio = o["recon_images_per_s"] / r["torch_images_per_s"]
            print(f"{r['stage']:<20} {r['batch']:>6} {o['recon_ms']:>11.2f} {o['recon_images_per_s']:>12.0f} "
                  f"{r['torch_ms']:>11.2f} {r['torch_images_per_s']:>12.0f} {ratio:>6.2f}x")
        print("ratio = ReconAD images/s / PyTorch images/s (> 1: ReconAD faster)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
