// RotNet (stage 1 of method 2) and TwoStageAE (stage 2): the encoder's
// stage rule for small gray and large RGB images, the rotation batch (the
// loader's layout, on any device), the rotation score against per-image
// cross-entropies, a few RotNet steps lowering the loss, and the frozen
// encoder: after stage-2 training steps (Adam over ALL parameters) its
// weights and BatchNorm running statistics are bitwise unchanged and no
// conv weight- or input-gradient kernel ran for it.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "data/transforms.hpp"
#include "gradcheck.hpp"
#include "models/rotnet.hpp"
#include "models/twostage.hpp"
#include "nn/optim.hpp"
#include "runtime/error.hpp"
#include "runtime/ops.hpp"
#include "runtime/profile.hpp"

using namespace recon;
using namespace recon::models;

namespace {

// A tiny RotNet for 16x16 gray images: stem 4 channels, one stage (16 -> 8).
RotNetConfig tiny_config() {
  RotNetConfig c;
  c.channels = 1;
  c.height = c.width = 16;
  c.base_width = 4;
  c.max_width = 8;
  return c;
}

// Images with a rotation-revealing structure: a bright bar near the top.
Tensor bar_images(int64_t n, int s, uint64_t seed) {
  Tensor x = test::rand_tensor({n, 1, s, s}, seed, 0.f, 0.3f);
  float* p = x.data();
  for (int64_t i = 0; i < n; ++i)
    for (int y = 1; y < 3; ++y)
      for (int c = 2; c < s - 2; ++c) p[(i * s + y) * s + c] = 1.f;
  return x;
}

}  // namespace

TEST_CASE("RotNet: stages until the feature map is at most 8 pixels, channels doubling to the cap") {
  Generator gen(1);
  RotNet mnist(RotNetConfig{}, gen);  // 28x28 gray
  CHECK(mnist.num_stages() == 2);
  CHECK(mnist.stage_channels() == std::vector<int>{32, 64, 128});
  CHECK(mnist.feature_size().h == 7);
  Tensor x = test::rand_tensor({2, 1, 28, 28}, 2, 0.f, 1.f);
  CHECK(mnist.features(x).shape() == Shape{2, 128, 7, 7});
  CHECK(mnist(x).shape() == Shape{2, 4});

  RotNetConfig rgb;
  rgb.channels = 3;
  rgb.height = rgb.width = 128;
  RotNet big(rgb, gen);
  CHECK(big.num_stages() == 4);
  CHECK(big.stage_channels() == std::vector<int>{32, 64, 128, 256, 256});
  CHECK(big.feature_size().h == 8);
  rgb.height = rgb.width = 256;
  RotNet bigger(rgb, gen);
  CHECK(bigger.num_stages() == 5);
  CHECK(bigger.stage_channels().back() == 256);
  CHECK(bigger.feature_size().w == 8);

  // Odd and non-square sizes: 25x13 -> 13x7 -> 7x4.
  RotNetConfig odd = tiny_config();
  odd.height = 25;
  odd.width = 13;
  RotNet r(odd, gen);
  CHECK(r.num_stages() == 2);
  CHECK(r.features(test::rand_tensor({1, 1, 25, 13}, 3)).shape() == Shape{1, 8, 7, 4});
}

TEST_CASE("rotation_batch: the loader's layout, labels 0..3") {
  Tensor x = test::rand_tensor({3, 2, 5, 5}, 4);
  data::RotationBatch mine = rotation_batch(x), loader = data::make_rotation_batch(x);
  REQUIRE(mine.images.shape() == Shape{12, 2, 5, 5});
  CHECK(mine.images.to_vector() == loader.images.to_vector());
  CHECK(mine.labels.to_vector() == loader.labels.to_vector());
  CHECK(mine.labels.to_vector()[6] == 2.f);
  CHECK_THROWS(rotation_batch(test::rand_tensor({1, 1, 4, 5}, 5)));
}

TEST_CASE("rotation_scores: mean cross-entropy of the true rotation over the four turns, per image") {
  Generator gen(6);
  RotNet net(tiny_config(), gen);
  Tensor x = test::rand_tensor({3, 1, 16, 16}, 7, 0.f, 1.f);
  net.train();
  const std::vector<float> scores = rotation_scores(net, x).to_vector();
  CHECK(net.is_training());  // mode restored
  REQUIRE(scores.size() == 3);
  net.eval();
  NoGradGuard ng;
  Tensor logits = net(rotation_batch(x).images);
  for (int64_t i = 0; i < 3; ++i) {
    Tensor rows = slice(logits, 0, 4 * i, 4 * i + 4);
    const float want = cross_entropy(rows, Tensor::from_vector({0, 1, 2, 3}, {4})).item();
    CHECK(scores[(size_t)i] == doctest::Approx(want).epsilon(1e-5));
    CHECK(scores[(size_t)i] > 0.f);
  }
}

TEST_CASE("RotNet: a few Adam steps lower the rotation loss") {
  Generator gen(8);
  RotNet net(tiny_config(), gen);
  nn::Adam opt(net.parameters(), nn::AdamOptions{.lr = 1e-2f});
  Tensor x = bar_images(4, 16, 9);
  float first = 0, last = 0;
  for (int step = 0; step < 8; ++step) {
    RotationLoss l = rotation_loss(net, x);
    if (step == 0) first = l.loss.item();
    last = l.loss.item();
    opt.zero_grad();
    l.loss.backward();
    opt.step();
  }
  CHECK(last < first);
  RotationLoss l = rotation_loss(net, x);
  const float acc = rotation_accuracy(l.logits, l.labels);
  CHECK(acc >= 0.f);
  CHECK(acc <= 1.f);
}

TEST_CASE("TwoStageAE: the frozen encoder is bitwise unchanged and runs no gradient kernel") {
  Generator gen(10);
  auto rotnet = std::make_shared<RotNet>(tiny_config(), gen);
  // Give the BatchNorm running statistics non-default values (training-mode forwards).
  rotnet->train();
  for (int i = 0; i < 2; ++i) rotnet->features(bar_images(4, 16, 11 + i));
  TwoStageAE model(rotnet, TwoStageConfig{}, gen);
  model.train();
  CHECK(model.is_training());
  CHECK_FALSE(rotnet->is_training());
  CHECK_FALSE(rotnet->encoder()[0].is_training());

  std::vector<std::pair<std::string, Tensor>> before;
  for (auto& [name, t] : rotnet->named_parameters()) before.emplace_back(name, t.clone());
  for (auto& [name, t] : rotnet->named_buffers()) before.emplace_back(name, t.clone());
  std::vector<Tensor> dec_before;
  for (const Tensor& t : model.decoder_parameters()) dec_before.push_back(t.clone());

  // Everything to the optimizer, with weight decay: frozen parameters get no
  // gradient and must be skipped.
  nn::Adam opt(model.parameters(), nn::AdamOptions{.lr = 1e-2f, .weight_decay = 0.1f});
  Tensor x = bar_images(4, 16, 13);
  reset_range_counts();
  float first = 0, last = 0;
  const int steps = 4;
  for (int step = 0; step < steps; ++step) {
    TwoStageAE::Loss l = model.loss(x);
    CHECK(l.x_hat.shape() == x.shape());
    if (step == 0) first = l.loss.item();
    last = l.loss.item();
    opt.zero_grad();
    l.loss.backward();
    opt.step();
  }
  CHECK(last < first);
  // The encoder ran forward (2 convs a step) but never backward: the decoder
  // holds Linear layers and transposed convs only, so any conv2d gradient
  // kernel would be the encoder's.
  CHECK(range_count("conv2d") == 2 * steps);
  CHECK(range_count("conv2d_backward_weight") == 0);
  CHECK(range_count("conv2d_backward_data") == 0);
  CHECK(range_count("conv2d_backward_bias") == 0);
  // The decoder's two transposed convs did get weight gradients; behind the
  // bottleneck (squeeze, expand) both inputs need a gradient too.
  CHECK(range_count("conv_transpose2d_backward_weight") == 2 * steps);
  CHECK(range_count("conv_transpose2d_backward_data") == 2 * steps);

  size_t k = 0;
  for (auto& [name, t] : rotnet->named_parameters()) {
    INFO(name);
    CHECK_FALSE(t.requires_grad());
    CHECK_FALSE(t.grad().defined());
    CHECK(t.to_vector() == before[k++].second.to_vector());
  }
  for (auto& [name, t] : rotnet->named_buffers()) {
    INFO(name);
    CHECK(t.to_vector() == before[k++].second.to_vector());
  }
  bool changed = false;
  std::vector<Tensor> dec_after = model.decoder_parameters();
  for (size_t i = 0; i < dec_after.size(); ++i) changed |= dec_after[i].to_vector() != dec_before[i].to_vector();
  CHECK(changed);

  // No tape through the encoder even for an input that requires grad.
  Tensor xg = x.clone().set_requires_grad(true);
  CHECK_FALSE(model.encode(xg).requires_grad());
  CHECK(model.encode(xg).grad_fn() == nullptr);

  // Eval output in [0, 1].
  model.eval();
  NoGradGuard ng;
  for (float v : model(x).to_vector()) {
    CHECK(v >= 0.f);
    CHECK(v <= 1.f);
  }
}

TEST_CASE("TwoStageAE: the decoder mirrors odd sizes back to the input") {
  Generator gen(14);
  RotNetConfig c = tiny_config();
  c.height = 25;
  c.width = 14;
  c.target_size = 4;  // 25x14 -> 13x7 -> 7x4 -> 4x2
  auto rotnet = std::make_shared<RotNet>(c, gen);
  TwoStageAE model(rotnet, TwoStageConfig{}, gen);
  Tensor x = test::rand_tensor({2, 1, 25, 14}, 15, 0.f, 1.f);
  CHECK(model(x).shape() == x.shape());
  CHECK(model.loss(x).loss.dim() == 0);
}

TEST_CASE("TwoStageAE: the decoder squeezes the frozen features to a code of config().code numbers") {
  Generator gen(16);
  auto rotnet = std::make_shared<RotNet>(tiny_config(), gen);
  const int64_t flat = (int64_t)rotnet->feature_channels() * rotnet->feature_size().h * rotnet->feature_size().w;
  Tensor x = bar_images(3, 16, 17);
  SUBCASE("default: 32 numbers, a Linear squeeze and expand") {
    TwoStageAE model(rotnet, TwoStageConfig{}, gen);
    CHECK(model.config().code == 32);
    CHECK(model.code(x).shape() == Shape{3, 32});
    CHECK(model(x).shape() == x.shape());
    std::vector<std::string> names;
    for (auto& [name, t] : model.named_parameters()) names.push_back(name);
    CHECK(std::find(names.begin(), names.end(), "decoder.squeeze.weight") != names.end());
    CHECK(std::find(names.begin(), names.end(), "decoder.expand.weight") != names.end());
    int64_t squeeze = 0;
    for (auto& [name, t] : model.named_parameters())
      if (name == "decoder.squeeze.weight") squeeze = t.numel();
    CHECK(squeeze == 32 * flat);
  }
  SUBCASE("code 0: no bottleneck, the features decoded directly") {
    TwoStageConfig c;
    c.code = 0;
    TwoStageAE model(rotnet, c, gen);
    CHECK(model.code(x).shape() == model.encode(x).shape());
    CHECK(model(x).shape() == x.shape());
    for (auto& [name, t] : model.named_parameters()) {
      INFO(name);
      CHECK(name.find("squeeze") == std::string::npos);
      CHECK(name.find("expand") == std::string::npos);
    }
    // As before the bottleneck: the first transposed conv's input (the
    // frozen features) needs no gradient.
    model.train();
    reset_range_counts();
    TwoStageAE::Loss l = model.loss(x);
    l.loss.backward();
    CHECK(range_count("conv_transpose2d_backward_weight") == 2);
    CHECK(range_count("conv_transpose2d_backward_data") == 1);
    CHECK(range_count("conv2d_backward_weight") == 0);
  }
  SUBCASE("a negative code is an error") {
    TwoStageConfig c;
    c.code = -1;
    CHECK_THROWS_WITH_AS(TwoStageAE(rotnet, c, gen), doctest::Contains("code must be >= 0"), Error);
  }
}
