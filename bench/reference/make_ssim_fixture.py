#!/usr/bin/env python3
"""Writes tests/fixtures/ssim_reference.json: SSIM values and gradients from
PyTorch for ReconAD's ssim_map / ssim_loss (tests/test_ssim.cpp).

The definition (runtime/ops.hpp; Wang et al., IEEE TIP 2004), written here
with torch.nn.functional only: per channel, reflect-pad by 5
(F.pad(mode="reflect")), a depthwise conv2d with the 11x11 Gaussian window
(sigma 1.5, normalised outer product of the 1-D taps), then
    s_xx = w*x^2 - mu_x^2, s_yy = w*y^2 - mu_y^2, s_xy = w*(xy) - mu_x mu_y,
    SSIM = (2 mu_x mu_y + C1)(2 s_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(s_xx + s_yy + C2)),
C1 = 0.01^2, C2 = 0.03^2; loss = 1 - mean(SSIM). Everything in float64;
inputs are float32 values (what the C++ op sees), drawn from a fixed seed.

Per case the file holds: shape, x, y, map, loss, the loss gradients
loss_dx, loss_dy, a fixed weight map gmap and the gradients map_dx, map_dy of
sum(gmap * SSIM). Arrays are flat, row-major (N, C, H, W).

Run with Debian's python3-torch: /usr/bin/python3 bench/reference/make_ssim_fixture.py
"""
import argparse
import json
import os

import torch
import torch.nn.functional as F

RADIUS = 5
SIGMA = 1.5
C1 = 0.01 ** 2
C2 = 0.03 ** 2


def window(channels):
    d = torch.arange(2 * RADIUS + 1, dtype=torch.float64) - RADIUS
    g = torch.exp(-d * d / (2 * SIGMA * SIGMA))
    g = g / g.sum()
    return torch.outer(g, g).expand(channels, 1, 2 * RADIUS + 1, 2 * RADIUS + 1).contiguous()


def ssim_map(x, y):
    c = x.shape[1]
    w = window(c)

    def filt(t):
        return F.conv2d(F.pad(t, (RADIUS, RADIUS, RADIUS, RADIUS), mode="reflect"), w, groups=c)

    mx, my = filt(x), filt(y)
    sxx = filt(x * x) - mx * mx
    syy = filt(y * y) - my * my
    sxy = filt(x * y) - mx * my
    return ((2 * mx * my + C1) * (2 * sxy + C2)) / ((mx * mx + my * my + C1) * (sxx + syy + C2))


def case(name, shape, gen, correlated):
    x = torch.rand(shape, generator=gen, dtype=torch.float32)
    if correlated:  # a reconstruction-like y: x plus small noise, clamped to [0, 1]
        y = (x + 0.1 * (torch.rand(shape, generator=gen, dtype=torch.float32) - 0.5)).clamp(0, 1)
    else:
        y = torch.rand(shape, generator=gen, dtype=torch.float32)
    gmap = torch.rand(shape, generator=gen, dtype=torch.float32) + 0.5
    x64 = x.double().requires_grad_(True)
    y64 = y.double().requires_grad_(True)
    m = ssim_map(x64, y64)
    loss = 1 - m.mean()
    loss_dx, loss_dy = torch.autograd.grad(loss, (x64, y64), retain_graph=True)
    map_dx, map_dy = torch.autograd.grad((m * gmap.double()).sum(), (x64, y64))

    def flat32(t):  # float32 inputs: repr of the float32 value, exact
        return [float(v) for v in t.flatten().tolist()]

    def flat64(t):
        return [float("%.12g" % v) for v in t.detach().flatten().tolist()]

    return {
        "name": name,
        "shape": list(shape),
        "x": flat32(x),
        "y": flat32(y),
        "gmap": flat32(gmap),
        "map": flat64(m),
        "loss": float("%.12g" % loss.item()),
        "loss_dx": flat64(loss_dx),
        "loss_dy": flat64(loss_dy),
        "map_dx": flat64(map_dx),
        "map_dy": flat64(map_dy),
    }


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    default_out = os.path.join(here, "..", "..", "tests", "fixtures", "ssim_reference.json")
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.normpath(default_out))
    args = ap.parse_args()
    gen = torch.Generator().manual_seed(20240611)
    cases = [
        case("smallest 6x7 gray, independent", (1, 1, 6, 7), gen, False),
        case("2x2 channels 9x13, independent", (2, 2, 9, 13), gen, False),
        case("8x11 gray, correlated", (1, 1, 8, 11), gen, True),
        case("3 channels 17x6, correlated", (1, 3, 17, 6), gen, True),
    ]
    doc = {
        "about": "SSIM (Wang et al. 2004) values and gradients from PyTorch %s in float64; "
        "written by bench/reference/make_ssim_fixture.py" % torch.__version__,
        "cases": cases,
    }
    with open(args.out, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    print("wrote %s (%d cases)" % (args.out, len(cases)))


if __name__ == "__main__":
    main()
