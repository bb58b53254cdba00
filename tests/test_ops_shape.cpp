// concat, slice, pad and rot90 on the CPU: forward against naive index loops
// and hand-written results, views sharing storage, gradients against finite
// differences, and argument errors that name the op and the shapes.
#include <doctest/doctest.h>

#include <memory>

#include "runtime/error.hpp"
#include "runtime/ops.hpp"
#include "tests/gradcheck.hpp"

using namespace recon;
using recon::test::gradcheck;
using recon::test::rand_tensor;

namespace {

// A CUDA tensor handle with no memory behind it: enough to reach the device
// checks in a build without CUDA (no kernel may touch it).
Tensor fake_cuda_tensor(const Shape& shape) {
  return make_view(std::make_shared<Storage>(0, Device::cuda()), shape, contiguous_strides(shape), 0);
}

// Multi-index of linear position `i` in `shape` (row-major).
std::vector<int64_t> unravel(int64_t i, const Shape& shape) {
  std::vector<int64_t> idx(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    idx[d] = i % shape[d];
    i /= shape[d];
  }
  return idx;
}

int64_t ravel(const std::vector<int64_t>& idx, const Shape& shape) {
  int64_t i = 0;
  for (size_t d = 0; d < shape.size(); ++d) i = i * shape[d] + idx[d];
  return i;
}

// PyTorch's reflect padding by repeated mirroring about the edges.
int64_t ref_reflect(int64_t i, int64_t n) {
  while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i;
  return i;
}

}  // namespace

// ---- concat -------------------------------------------------------------------------------

TEST_CASE("concat along every dim of ranks 1 to 4 against index loops") {
  const std::vector<Shape> bases = {{5}, {3, 4}, {2, 3, 4}, {2, 3, 4, 5}};
  for (const Shape& base : bases) {
    const int rank = (int)base.size();
    for (int dim = -rank; dim < rank; ++dim) {
      const int d = dim < 0 ? dim + rank : dim;
      INFO("base " << shape_str(base) << " dim " << dim);
      std::vector<Tensor> xs;
      std::vector<int64_t> sizes = {base[d], 1, base[d] + 2};
      for (size_t k = 0; k < sizes.size(); ++k) {
        Shape s = base;
        s[d] = sizes[k];
        xs.push_back(rand_tensor(s, 100 + k));
      }
      Tensor y = concat(xs, dim);
      Shape want_shape = base;
      want_shape[d] = sizes[0] + sizes[1] + sizes[2];
      REQUIRE(y.shape() == want_shape);
      std::vector<float> yv = y.to_vector();
      int fails = 0;
      for (int64_t i = 0; i < y.numel(); ++i) {
        std::vector<int64_t> idx = unravel(i, want_shape);
        size_t k = 0;
        while (idx[d] >= sizes[k]) idx[d] -= sizes[k++];
        if (yv[(size_t)i] != xs[k].to_vector()[(size_t)ravel(idx, xs[k].shape())]) ++fails;
      }
      CHECK(fails == 0);
    }
  }
}

TEST_CASE("concat gradients split back; inputs without grad get none") {
  Tensor a = rand_tensor({2, 3, 2, 2}, 1).set_requires_grad(true);
  Tensor b = rand_tensor({2, 1, 2, 2}, 2);
  Tensor c = rand_tensor({2, 2, 2, 2}, 3).set_requires_grad(true);
  gradcheck([](const std::vector<Tensor>& in) { return concat(in, 1); }, {a, b, c});
  gradcheck([](const std::vector<Tensor>& in) { return concat(in, -1); },
            {rand_tensor({3, 2}, 4).set_requires_grad(true), rand_tensor({3, 5}, 5).set_requires_grad(true)});
  // Exact split: a weight of the output's position comes back to its source.
  Tensor p = Tensor::zeros({2, 2}).set_requires_grad(true), q = Tensor::zeros({2, 1}).set_requires_grad(true);
  Tensor w = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  sum(mul(concat({p, q}, 1), w)).backward();
  CHECK(p.grad().to_vector() == std::vector<float>{1, 2, 4, 5});
  CHECK(q.grad().to_vector() == std::vector<float>{3, 6});
  // A non-contiguous input (a strided slice) concatenates by its values.
  Tensor base = Tensor::from_vector({0, 1, 2, 3, 4, 5}, {2, 3});
  CHECK(concat({slice(base, 1, 0, 3, 2), Tensor::full({2, 1}, 9.f)}, 1).to_vector() ==
        std::vector<float>{0, 2, 9, 3, 5, 9});
}

TEST_CASE("concat argument errors name the op and the shapes") {
  Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({3, 3});
  CHECK_THROWS_WITH_AS(concat({a, b}, 1),
                       doctest::Contains("concat: input 1 has shape (3, 3) but input 0 has (2, 3); only dim 1 may "
                                         "differ"),
                       Error);
  CHECK_THROWS_WITH_AS(concat({a, Tensor::zeros({2, 3, 1})}, 0),
                       doctest::Contains("concat: input 1 has shape (2, 3, 1) but input 0 has (2, 3)"), Error);
  CHECK_THROWS_WITH_AS(concat({a, a}, 2), doctest::Contains("concat: axis 2 is out of range for shape (2, 3)"),
                       Error);
  CHECK_THROWS_WITH_AS(concat({a, a}, -3), doctest::Contains("concat: axis -3 is out of range"), Error);
  CHECK_THROWS_WITH_AS(concat({}, 0), doctest::Contains("concat: needs at least one tensor"), Error);
  CHECK_THROWS_WITH_AS(concat({a, fake_cuda_tensor({2, 3})}, 0),
                       doctest::Contains("concat: tensors on different devices (cpu and cuda:0)"), Error);
}

// ---- slice --------------------------------------------------------------------------------

TEST_CASE("slice: Python semantics, negative and clamped bounds, steps") {
  Tensor x = rand_tensor({4, 7, 3}, 7);
  std::vector<float> xv = x.to_vector();
  struct Case {
    int dim;
    int64_t start, end, step;
    std::vector<int64_t> picked;  // indices taken along dim, as Python's range(7)[start:end:step]
  };
  const std::vector<Case> cases = {
      {1, 0, 7, 1, {0, 1, 2, 3, 4, 5, 6}}, {1, 2, 5, 1, {2, 3, 4}},  {1, 1, 7, 2, {1, 3, 5}},
      {1, -3, 7, 1, {4, 5, 6}},            {1, 0, -2, 3, {0, 3}},     {1, -100, 100, 4, {0, 4}},
      {1, 5, 2, 1, {}},                    {1, 6, 100, 5, {6}},       {-2, -1, 7, 1, {6}},
  };
  for (const Case& c : cases) {
    INFO("dim " << c.dim << " [" << c.start << ":" << c.end << ":" << c.step << "]");
    Tensor y = slice(x, c.dim, c.start, c.end, c.step);
    REQUIRE(y.shape() == Shape{4, (int64_t)c.picked.size(), 3});
    std::vector<float> yv = y.to_vector();
    int fails = 0;
    for (int64_t i = 0; i < 4; ++i)
      for (size_t j = 0; j < c.picked.size(); ++j)
        for (int64_t k = 0; k < 3; ++k)
          if (yv[(size_t)((i * (int64_t)c.picked.size() + (int64_t)j) * 3 + k)] !=
              xv[(size_t)((i * 7 + c.picked[j]) * 3 + k)])
            ++fails;
    CHECK(fails == 0);
  }
  // Leading and trailing dims.
  CHECK(slice(x, 0, 1, 3).to_vector() == std::vector<float>(xv.begin() + 21, xv.begin() + 63));
  Tensor last = slice(x, -1, 2, 3);
  REQUIRE(last.shape() == Shape{4, 7, 1});
  CHECK(last.to_vector()[5] == xv[5 * 3 + 2]);
}

TEST_CASE("slice is a view: shares storage, sees writes, slices of slices") {
  Tensor x = Tensor::from_vector({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, {3, 4});
  Tensor s = slice(x, 1, 1, 4, 2);  // columns 1, 3
  CHECK(s.shares_storage(x));
  CHECK_FALSE(s.is_contiguous());
  CHECK(s.to_vector() == std::vector<float>{1, 3, 5, 7, 9, 11});
  x.data()[7] = 70.f;  // x[1, 3]
  CHECK(s.to_vector() == std::vector<float>{1, 3, 5, 70, 9, 11});
  Tensor ss = slice(s, 0, 1, 3);  // rows 1, 2 of the view
  CHECK(ss.shares_storage(x));
  CHECK(ss.to_vector() == std::vector<float>{5, 70, 9, 11});
  Tensor sss = slice(ss, 1, -1, 2);  // its last column: x[1:3, 3]
  CHECK(sss.to_vector() == std::vector<float>{70, 11});
}

TEST_CASE("slice gradient scatters into zeros of the input shape") {
  Tensor x = rand_tensor({3, 5}, 9).set_requires_grad(true);
  sum(slice(x, 1, 1, 5, 2)).backward();
  CHECK(x.grad().to_vector() == std::vector<float>{0, 1, 0, 1, 0, 0, 1, 0, 1, 0, 0, 1, 0, 1, 0});
  gradcheck([](const std::vector<Tensor>& in) { return slice(in[0], 2, -4, 100, 3); },
            {rand_tensor({2, 3, 7}, 10).set_requires_grad(true)});
  // Through a slice of a slice (the inner view is non-contiguous).
  gradcheck([](const std::vector<Tensor>& in) { return slice(slice(in[0], 0, 1, 4, 2), 1, 0, 3); },
            {rand_tensor({5, 4}, 11).set_requires_grad(true)});
  // An empty slice gives a zero gradient of the input's shape.
  Tensor z = rand_tensor({2, 3}, 12).set_requires_grad(true);
  Tensor e = slice(z, 1, 2, 1);
  REQUIRE(e.numel() == 0);
  sum(concat({e, slice(z, 1, 0, 1)}, 1)).backward();
  CHECK(z.grad().to_vector() == std::vector<float>{1, 0, 0, 1, 0, 0});
}

TEST_CASE("slice argument errors") {
  Tensor x = Tensor::zeros({2, 3});
  CHECK_THROWS_WITH_AS(slice(x, 2, 0, 1), doctest::Contains("slice: axis 2 is out of range for shape (2, 3)"),
                       Error);
  CHECK_THROWS_WITH_AS(slice(x, 1, 0, 3, 0), doctest::Contains("slice: step 0 must be positive (input (2, 3))"),
                       Error);
  CHECK_THROWS_WITH_AS(slice(x, 1, 3, 0, -1), doctest::Contains("slice: step -1 must be positive"), Error);
  CHECK_THROWS_WITH_AS(slice(Tensor::scalar(1.f), 0, 0, 1), doctest::Contains("slice: cannot slice a 0-d tensor"),
                       Error);
}

// ---- pad ------------------------------------------------------------------------------------

TEST_CASE("pad: hand-written reflect and zero rows") {
  Tensor x = Tensor::from_vector({1, 2, 3}, {1, 1, 1, 3});
  CHECK(pad(x, {2, 1, 0, 0}, PadMode::Reflect).to_vector() == std::vector<float>{3, 2, 1, 2, 3, 2});
  CHECK(pad(x, {1, 2, 0, 0}, PadMode::Zero).to_vector() == std::vector<float>{0, 1, 2, 3, 0, 0});
  Tensor m = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {1, 1, 3, 2});
  // top 1 reflects row 1, bottom 2 reflects rows 1 and 0; left 1 reflects column 1.
  CHECK(pad(m, {1, 0, 1, 2}, PadMode::Reflect).to_vector() ==
        std::vector<float>{4, 3, 4, 2, 1, 2, 4, 3, 4, 6, 5, 6, 4, 3, 4, 2, 1, 2});
}

TEST_CASE("pad forward against index loops and gradients, both modes") {
  struct Case {
    Shape shape;
    std::array<int, 4> pads;
  };
  for (const Case& c : std::vector<Case>{{{2, 3, 4, 5}, {1, 1, 1, 1}},
                                         {{1, 1, 5, 3}, {2, 0, 0, 4}},
                                         {{2, 2, 3, 6}, {0, 5, 2, 1}},
                                         {{1, 2, 4, 4}, {0, 0, 0, 0}},
                                         {{1, 1, 2, 2}, {1, 1, 1, 1}}}) {
    for (PadMode mode : {PadMode::Zero, PadMode::Reflect}) {
      const bool refl = mode == PadMode::Reflect;
      INFO(shape_str(c.shape) << " pads " << c.pads[0] << "," << c.pads[1] << "," << c.pads[2] << "," << c.pads[3]
                              << (refl ? " reflect" : " zero"));
      Tensor x = rand_tensor(c.shape, 21);
      Tensor y = pad(x, c.pads, mode);
      const int64_t h = c.shape[2], w = c.shape[3];
      const int64_t oh = h + c.pads[2] + c.pads[3], ow = w + c.pads[0] + c.pads[1];
      REQUIRE(y.shape() == Shape{c.shape[0], c.shape[1], oh, ow});
      std::vector<float> xv = x.to_vector(), yv = y.to_vector();
      int fails = 0;
      for (int64_t pl = 0; pl < c.shape[0] * c.shape[1]; ++pl)
        for (int64_t i = 0; i < oh; ++i)
          for (int64_t j = 0; j < ow; ++j) {
            int64_t si = i - c.pads[2], sj = j - c.pads[0];
            float want;
            if (refl) want = xv[(size_t)(pl * h * w + ref_reflect(si, h) * w + ref_reflect(sj, w))];
            else want = (si >= 0 && si < h && sj >= 0 && sj < w) ? xv[(size_t)(pl * h * w + si * w + sj)] : 0.f;
            if (yv[(size_t)(pl * oh * ow + i * ow + j)] != want) ++fails;
          }
      CHECK(fails == 0);
      const std::array<int, 4> pads = c.pads;
      gradcheck([pads, mode](const std::vector<Tensor>& in) { return pad(in[0], pads, mode); },
                {x.set_requires_grad(true)});
    }
  }
}

TEST_CASE("pad argument errors") {
  Tensor x = Tensor::zeros({1, 2, 3, 4});
  CHECK_THROWS_WITH_AS(pad(x, {4, 0, 0, 0}, PadMode::Reflect),
                       doctest::Contains("pad: reflect pads (left 4, right 0, top 0, bottom 0) must be smaller than "
                                         "the padded dims of input (1, 2, 3, 4)"),
                       Error);
  CHECK_THROWS_WITH_AS(pad(x, {0, 0, 0, 3}, PadMode::Reflect), doctest::Contains("bottom 3) must be smaller"),
                       Error);
  CHECK_NOTHROW(pad(x, {3, 3, 2, 2}, PadMode::Reflect));  // the largest legal reflect pads
  CHECK_THROWS_WITH_AS(pad(x, {0, -1, 0, 0}), doctest::Contains("pad: pads (left 0, right -1, top 0, bottom 0) "
                                                                "must be non-negative, for input (1, 2, 3, 4)"),
                       Error);
  CHECK_THROWS_WITH_AS(pad(Tensor::zeros({3, 4}), {1, 1, 1, 1}),
                       doctest::Contains("pad: the input must be 4-D (N, C, H, W), got (3, 4)"), Error);
}

// ---- rot90 ----------------------------------------------------------------------------------

TEST_CASE("rot90: hand-written quarter turns counter-clockwise, any k") {
  Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {1, 1, 2, 3});  // [[1, 2, 3], [4, 5, 6]]
  Tensor r1 = rot90(x, 1);
  CHECK(r1.shape() == Shape{1, 1, 3, 2});
  CHECK(r1.to_vector() == std::vector<float>{3, 6, 2, 5, 1, 4});  // torch.rot90(x, 1, (2, 3))
  CHECK(rot90(x, 2).to_vector() == std::vector<float>{6, 5, 4, 3, 2, 1});
  Tensor r3 = rot90(x, 3);
  CHECK(r3.shape() == Shape{1, 1, 3, 2});
  CHECK(r3.to_vector() == std::vector<float>{4, 1, 5, 2, 6, 3});
  CHECK(rot90(x, -1).to_vector() == r3.to_vector());
  CHECK(rot90(x, 5).to_vector() == r1.to_vector());
  CHECK(rot90(x, -6).to_vector() == rot90(x, 2).to_vector());
}

TEST_CASE("rot90 round trips are the identity; gradients") {
  Tensor x = rand_tensor({2, 3, 4, 5}, 31);
  Tensor r4 = rot90(x, 4);
  CHECK(r4.shape() == x.shape());
  CHECK(r4.to_vector() == x.to_vector());
  CHECK(rot90(rot90(x, 1), 3).to_vector() == x.to_vector());
  CHECK(rot90(rot90(x, 3), 1).to_vector() == x.to_vector());
  CHECK(rot90(rot90(rot90(rot90(x, 1), 1), 1), 1).to_vector() == x.to_vector());
  CHECK(rot90(rot90(x, 2), 2).to_vector() == x.to_vector());
  CHECK(rot90(x, 1).shape() == Shape{2, 3, 5, 4});
  for (int k : {1, 2, 3, -1}) {
    INFO("k " << k);
    gradcheck([k](const std::vector<Tensor>& in) { return rot90(in[0], k); },
              {rand_tensor({2, 2, 3, 5}, 32).set_requires_grad(true)});
  }
  CHECK_THROWS_WITH_AS(rot90(Tensor::zeros({2, 3, 4}), 1),
                       doctest::Contains("rot90: the input must be 4-D (N, C, H, W), got (2, 3, 4)"), Error);
}

// ---- sizes past the kernels' parallel threshold (OpenMP paths) ------------------------------

TEST_CASE("large inputs (parallel loops): rot90 round trip, pad and concat values") {
  Tensor x = rand_tensor({4, 8, 40, 50}, 41);
  CHECK(rot90(rot90(x, 1), -1).to_vector() == x.to_vector());
  Tensor r = rot90(x, 1);
  std::vector<float> xv = x.to_vector(), rv = r.to_vector();
  CHECK(rv[(size_t)(3 * 8 * 2000 + 5 * 2000 + 7 * 40 + 11)] == xv[(size_t)(3 * 8 * 2000 + 5 * 2000 + 11 * 50 + 42)]);
  Tensor p = pad(x, {2, 3, 1, 4}, PadMode::Reflect);  // (4, 8, 45, 55)
  std::vector<float> pv = p.to_vector();
  int fails = 0;
  for (int64_t pl = 0; pl < 32; ++pl)
    for (int64_t i = 0; i < 45; ++i)
      for (int64_t j = 0; j < 55; ++j)
        if (pv[(size_t)((pl * 45 + i) * 55 + j)] !=
            xv[(size_t)((pl * 40 + ref_reflect(i - 1, 40)) * 50 + ref_reflect(j - 2, 50))])
          ++fails;
  CHECK(fails == 0);
  Tensor c = concat({x, x}, 2);  // (4, 8, 80, 50)
  std::vector<float> cv = c.to_vector();
  CHECK(std::vector<float>(cv.begin() + 2000, cv.begin() + 4000) == std::vector<float>(xv.begin(), xv.begin() + 2000));
}
