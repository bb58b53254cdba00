// ssim_map / ssim_loss on the CPU: against a naive double-precision SSIM
// written here (direct 2-D window sums over the reflect-padded images),
// against PyTorch values (tests/fixtures/ssim_reference.json, written by
// bench/reference/make_ssim_fixture.py), central finite differences of both
// inputs' gradients, identical and constant images, and argument checks.
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gradcheck.hpp"
#include "nn/json.hpp"
#include "nn/loss.hpp"
#include "runtime/error.hpp"
#include "runtime/ops.hpp"

using namespace recon;

namespace {

// Reflect without repeating the edge (-1 -> 1, n -> n - 2).
int refl(int i, int n) { return i < 0 ? -i : (i >= n ? 2 * (n - 1) - i : i); }

// Naive SSIM map in double: for every pixel, direct sums over the 11x11
// window of 2-D Gaussian weights exp(-(dy^2 + dx^2) / (2 sigma^2)) / Z.
std::vector<double> naive_ssim(const std::vector<float>& x, const std::vector<float>& y, const Shape& s) {
  const int64_t planes = s[0] * s[1];
  const int h = (int)s[2], w = (int)s[3];
  double wt[11][11], z = 0;
  for (int a = 0; a < 11; ++a)
    for (int b = 0; b < 11; ++b) z += wt[a][b] = std::exp(-((a - 5) * (a - 5) + (b - 5) * (b - 5)) / (2 * 1.5 * 1.5));
  const double c1 = 1e-4, c2 = 9e-4;
  std::vector<double> out(x.size());
  for (int64_t p = 0; p < planes; ++p)
    for (int i = 0; i < h; ++i)
      for (int j = 0; j < w; ++j) {
        double mx = 0, my = 0, xx = 0, yy = 0, xy = 0;
        for (int a = 0; a < 11; ++a)
          for (int b = 0; b < 11; ++b) {
            const int64_t k = p * h * w + (int64_t)refl(i + a - 5, h) * w + refl(j + b - 5, w);
            const double wv = wt[a][b] / z, xv = x[k], yv = y[k];
            mx += wv * xv;
            my += wv * yv;
            xx += wv * xv * xv;
            yy += wv * yv * yv;
            xy += wv * xv * yv;
          }
        const double vx = xx - mx * mx, vy = yy - my * my, cxy = xy - mx * my;
        out[p * h * w + (int64_t)i * w + j] =
            (2 * mx * my + c1) * (2 * cxy + c2) / ((mx * mx + my * my + c1) * (vx + vy + c2));
      }
  return out;
}

std::vector<double> to_double(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }

std::vector<float> json_floats(const nn::Json& a) {
  std::vector<float> v;
  for (const nn::Json& e : a.as_array()) v.push_back((float)e.as_number());
  return v;
}
std::vector<double> json_doubles(const nn::Json& a) {
  std::vector<double> v;
  for (const nn::Json& e : a.as_array()) v.push_back(e.as_number());
  return v;
}

// Element-wise closeness with the absolute tolerance scaled to the
// reference's largest magnitude (gradients of the loss are O(1/numel)).
void check_scaled(const Tensor& got, const std::vector<double>& want, double rel, const std::string& what) {
  double peak = 0;
  for (double v : want) peak = std::max(peak, std::fabs(v));
  test::check_close(got, want, rel * peak, rel, what);
}

}  // namespace

TEST_CASE("ssim_map and ssim_loss match a naive double-precision SSIM") {
  for (const Shape& s : {Shape{1, 1, 6, 6}, Shape{2, 3, 13, 21}, Shape{1, 2, 16, 9}, Shape{1, 1, 40, 7}}) {
    INFO("shape " << shape_str(s));
    Tensor x = test::rand_tensor(s, 11, 0.f, 1.f), y = test::rand_tensor(s, 12, 0.f, 1.f);
    const std::vector<double> want = naive_ssim(x.to_vector(), y.to_vector(), s);
    Tensor m = ssim_map(x, y);
    CHECK(m.shape() == s);
    test::check_close(m, want, 2e-6, 1e-5, "map");
    double mean = 0;
    for (double v : want) mean += v;
    mean /= (double)want.size();
    test::check_close(ssim_loss(x, y), {1.0 - mean}, 2e-6, 1e-5, "loss");
    // Correlated inputs (SSIM near 1, as for a good reconstruction).
    Tensor yc = clamp(add(x, test::rand_tensor(s, 13, -0.05f, 0.05f)), 0.f, 1.f);
    test::check_close(ssim_map(x, yc), naive_ssim(x.to_vector(), yc.to_vector(), s), 2e-6, 1e-5, "correlated map");
  }
}

TEST_CASE("ssim_map, ssim_loss and their gradients match PyTorch (float64 fixture)") {
  const std::string path = std::string(RECON_SOURCE_DIR) + "/tests/fixtures/ssim_reference.json";
  std::ifstream in(path);
  REQUIRE_MESSAGE(in.good(), "missing " << path << " (bench/reference/make_ssim_fixture.py writes it)");
  std::stringstream text;
  text << in.rdbuf();
  const nn::Json doc = nn::Json::parse(text.str());
  REQUIRE(doc.at("cases").size() >= 4);
  for (const nn::Json& c : doc.at("cases").as_array()) {
    INFO(c.at("name").as_string());
    Shape s;
    for (const nn::Json& d : c.at("shape").as_array()) s.push_back(d.as_int());
    Tensor x = Tensor::from_vector(json_floats(c.at("x")), s).set_requires_grad(true);
    Tensor y = Tensor::from_vector(json_floats(c.at("y")), s).set_requires_grad(true);
    Tensor gmap = Tensor::from_vector(json_floats(c.at("gmap")), s);

    Tensor m = ssim_map(x, y);
    test::check_close(m, json_doubles(c.at("map")), 2e-6, 1e-5, "map");
    m.backward(gmap);
    check_scaled(x.grad(), json_doubles(c.at("map_dx")), 1e-4, "map dx");
    check_scaled(y.grad(), json_doubles(c.at("map_dy")), 1e-4, "map dy");

    x.zero_grad();
    y.zero_grad();
    Tensor l = ssim_loss(x, y);
    CHECK(l.dim() == 0);
    test::check_close(l, {c.at("loss").as_number()}, 2e-6, 1e-5, "loss");
    l.backward();
    check_scaled(x.grad(), json_doubles(c.at("loss_dx")), 1e-4, "loss dx");
    check_scaled(y.grad(), json_doubles(c.at("loss_dy")), 1e-4, "loss dy");
  }
}

TEST_CASE("ssim gradients match central finite differences in both inputs") {
  test::GradcheckOptions opt;
  opt.eps = 1e-2;  // float32 forward: smaller steps drown in rounding
  opt.atol = 2e-3;
  opt.rtol = 1e-2;
  for (const Shape& s : {Shape{1, 1, 6, 7}, Shape{2, 1, 8, 6}}) {
    INFO("shape " << shape_str(s));
    Tensor x = test::rand_tensor(s, 21, 0.f, 1.f).set_requires_grad(true);
    Tensor y = test::rand_tensor(s, 22, 0.f, 1.f).set_requires_grad(true);
    test::gradcheck([](const std::vector<Tensor>& in) { return ssim_map(in[0], in[1]); }, {x, y}, opt);
    // The loss's gradients are O(1/numel): scale the objective so that the
    // tolerances mean the same.
    const float n = (float)shape_numel(s);
    test::gradcheck([n](const std::vector<Tensor>& in) { return scale(ssim_loss(in[0], in[1]), n); }, {x, y}, opt);
    // Correlated inputs: the regime of a trained autoencoder.
    Tensor yc = clamp(add(x.detach(), test::rand_tensor(s, 23, -0.05f, 0.05f)), 0.f, 1.f).set_requires_grad(true);
    test::gradcheck([](const std::vector<Tensor>& in) { return ssim_map(in[0], in[1]); }, {x, yc}, opt);
  }
}

TEST_CASE("only the inputs that require grad receive one") {
  Tensor x = test::rand_tensor({1, 1, 7, 7}, 31, 0.f, 1.f).set_requires_grad(true);
  Tensor y = test::rand_tensor({1, 1, 7, 7}, 32, 0.f, 1.f);
  ssim_loss(x, y).backward();
  CHECK(x.grad().defined());
  CHECK_FALSE(y.grad().defined());
  Tensor x2 = x.detach(), y2 = y.detach().set_requires_grad(true);
  ssim_map(x2, y2).backward(Tensor::ones({1, 1, 7, 7}));
  CHECK(y2.grad().defined());
  CHECK_FALSE(x2.grad().defined());
  NoGradGuard ng;
  CHECK(ssim_loss(x, y).grad_fn() == nullptr);
}

TEST_CASE("identical images: SSIM 1 everywhere, loss 0, zero gradients") {
  const Shape s{2, 3, 9, 12};
  Tensor x = test::rand_tensor(s, 41, 0.f, 1.f).set_requires_grad(true);
  Tensor y = x.detach().clone().set_requires_grad(true);
  Tensor m = ssim_map(x, y);
  test::check_close(m, std::vector<double>(m.numel(), 1.0), 1e-6, 0, "map");
  m.backward(test::rand_tensor(s, 42, 0.5f, 1.5f));
  test::check_close(x.grad(), std::vector<double>(m.numel(), 0.0), 1e-5, 0, "map dx");
  test::check_close(y.grad(), std::vector<double>(m.numel(), 0.0), 1e-5, 0, "map dy");
  x.zero_grad();
  y.zero_grad();
  Tensor l = ssim_loss(x, y);
  CHECK(std::fabs(l.item()) <= 1e-6);
  l.backward();
  test::check_close(x.grad(), std::vector<double>(m.numel(), 0.0), 1e-8, 0, "loss dx");
  test::check_close(y.grad(), std::vector<double>(m.numel(), 0.0), 1e-8, 0, "loss dy");
}

TEST_CASE("constant images: SSIM is the luminance term only") {
  // mu_x = a, mu_y = b, all variances 0: SSIM = (2ab + C1) / (a^2 + b^2 + C1).
  const double a = 0.25, b = 0.75, c1 = 1e-4;
  const double want = (2 * a * b + c1) / (a * a + b * b + c1);
  // The worst case of float32 SSIM: the variances are rounding residues of
  // E[x^2] - mu^2 (~1e-7) measured against C2 = 9e-4, so the contrast term is
  // off by ~1e-4 (PyTorch's float32 SSIM of the same images: 0.59981, 4e-4
  // off; ours 1.2e-4). Hence the tolerance.
  Tensor m = ssim_map(Tensor::full({1, 2, 6, 8}, (float)a), Tensor::full({1, 2, 6, 8}, (float)b));
  test::check_close(m, std::vector<double>(m.numel(), want), 3e-4, 0, "map");
  test::check_close(ssim_loss(Tensor::full({1, 1, 6, 6}, (float)a), Tensor::full({1, 1, 6, 6}, (float)b)),
                    {1.0 - want}, 3e-4, 0, "loss");
  // Both all zero (a black background): exactly 1.
  test::check_close(ssim_map(Tensor::zeros({1, 1, 7, 7}), Tensor::zeros({1, 1, 7, 7})), std::vector<double>(49, 1.0),
                    0, 0, "zeros");
}

TEST_CASE("ssim argument checks name the op and the shapes") {
  Tensor ok = Tensor::zeros({1, 1, 6, 6});
  // H or W below 6: the reflect pad of 5 must be smaller than the size.
  CHECK_THROWS_WITH_AS(ssim_map(Tensor::zeros({1, 1, 5, 9}), Tensor::zeros({1, 1, 5, 9})),
                       doctest::Contains("ssim_map: H and W must be at least 6"), Error);
  CHECK_THROWS_WITH_AS(ssim_loss(Tensor::zeros({1, 1, 9, 5}), Tensor::zeros({1, 1, 9, 5})),
                       doctest::Contains("ssim_loss: H and W must be at least 6"), Error);
  CHECK_THROWS_WITH_AS(ssim_map(ok, Tensor::zeros({1, 1, 6, 7})), doctest::Contains("must be equal"), Error);
  CHECK_THROWS_WITH_AS(ssim_map(Tensor::zeros({6, 6}), Tensor::zeros({6, 6})),
                       doctest::Contains("must be 4-D (N, C, H, W)"), Error);
  CHECK_THROWS_WITH_AS(ssim_loss(Tensor::zeros({0, 1, 6, 6}), Tensor::zeros({0, 1, 6, 6})),
                       doctest::Contains("undefined"), Error);
  CHECK_THROWS_AS(ssim_map(ok, Tensor()), Error);
  CHECK_NOTHROW(ssim_map(ok, ok));
  CHECK(ssim_map(Tensor::zeros({0, 2, 6, 6}), Tensor::zeros({0, 2, 6, 6})).numel() == 0);
}

TEST_CASE("ssim_map reads non-contiguous inputs") {
  Tensor big = test::rand_tensor({1, 1, 8, 14}, 51, 0.f, 1.f), other = test::rand_tensor({1, 1, 8, 7}, 52, 0.f, 1.f);
  Tensor x = slice(big, 3, 0, 14, 2);  // every other column: a strided view
  REQUIRE_FALSE(x.is_contiguous());
  test::check_close(ssim_map(x, other), naive_ssim(x.contiguous().to_vector(), other.to_vector(), {1, 1, 8, 7}),
                    2e-6, 1e-5, "strided x");
}

TEST_CASE("nn::SSIMLoss is ssim_loss") {
  Tensor x = test::rand_tensor({2, 1, 7, 9}, 81, 0.f, 1.f), y = test::rand_tensor({2, 1, 7, 9}, 82, 0.f, 1.f);
  CHECK(nn::SSIMLoss()(x, y).item() == ssim_loss(x, y).item());
}
