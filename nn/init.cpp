// Initialisation formulas (see init.hpp). Values are drawn on the host from
// the generator and copied in, so a seed gives the same weights on any device.
#include "nn/init.hpp"

#include <cmath>

#include "runtime/autograd.hpp"
#include "runtime/error.hpp"

namespace recon::nn {

double calculate_gain(Nonlinearity nl, double param) {
  switch (nl) {
    case Nonlinearity::Linear:
    case Nonlinearity::Sigmoid: return 1.0;
    case Nonlinearity::Tanh: return 5.0 / 3.0;
    case Nonlinearity::ReLU: return std::sqrt(2.0);
    case Nonlinearity::LeakyReLU: return std::sqrt(2.0 / (1.0 + param * param));
  }
  RECON_FAIL("calculate_gain: unknown nonlinearity");
}

std::pair<int64_t, int64_t> fan_in_and_fan_out(const Shape& shape) {
  RECON_CHECK(shape.size() >= 2, "fan_in_and_fan_out: needs a weight of at least 2 dims, got " << shape_str(shape));
  int64_t receptive = 1;
  for (size_t d = 2; d < shape.size(); ++d) receptive *= shape[d];
  return {shape[1] * receptive, shape[0] * receptive};
}

// Fills t in place with `src` (drawn on the host) without recording autograd.
static void assign(Tensor& t, const Tensor& src) {
  NoGradGuard no_grad;
  t.copy_(src);
}

void uniform_(Tensor& t, Generator& gen, double lo, double hi) {
  RECON_CHECK(lo <= hi, "uniform_: lo " << lo << " > hi " << hi);
  assign(t, Tensor::uniform(t.shape(), gen, (float)lo, (float)hi));
}

void normal_(Tensor& t, Generator& gen, double mean, double stddev) {
  RECON_CHECK(stddev >= 0, "normal_: stddev " << stddev << " < 0");
  assign(t, Tensor::normal(t.shape(), gen, (float)mean, (float)stddev));
}

void constant_(Tensor& t, double value) {
  NoGradGuard no_grad;
  t.fill_((float)value);
}

static double kaiming_std(const Tensor& t, double a, FanMode mode, Nonlinearity nl, const char* who) {
  auto [fan_in, fan_out] = fan_in_and_fan_out(t.shape());
  int64_t fan = mode == FanMode::FanIn ? fan_in : fan_out;
  RECON_CHECK(fan > 0, who << ": zero fan for shape " << shape_str(t.shape()));
  return calculate_gain(nl, a) / std::sqrt((double)fan);
}

void kaiming_uniform_(Tensor& t, Generator& gen, double a, FanMode mode, Nonlinearity nl) {
  const double bound = std::sqrt(3.0) * kaiming_std(t, a, mode, nl, "kaiming_uniform_");
  uniform_(t, gen, -bound, bound);
}

void kaiming_normal_(Tensor& t, Generator& gen, double a, FanMode mode, Nonlinearity nl) {
  normal_(t, gen, 0.0, kaiming_std(t, a, mode, nl, "kaiming_normal_"));
}

static double xavier_std(const Tensor& t, double gain, const char* who) {
  auto [fan_in, fan_out] = fan_in_and_fan_out(t.shape());
  RECON_CHECK(fan_in + fan_out > 0, who << ": zero fans for shape " << shape_str(t.shape()));
  return gain * std::sqrt(2.0 / (double)(fan_in + fan_out));
}

void xavier_uniform_(Tensor& t, Generator& gen, double gain) {
  const double bound = std::sqrt(3.0) * xavier_std(t, gain, "xavier_uniform_");
  uniform_(t, gen, -bound, bound);
}

void xavier_normal_(Tensor& t, Generator& gen, double gain) {
  normal_(t, gen, 0.0, xavier_std(t, gain, "xavier_normal_"));
}

void default_layer_init(Tensor& weight, Tensor* bias, Generator& gen) {
  kaiming_uniform_(weight, gen, std::sqrt(5.0));
  if (bias && bias->defined()) {
    const int64_t fan_in = fan_in_and_fan_out(weight.shape()).first;
    const double bound = fan_in > 0 ? 1.0 / std::sqrt((double)fan_in) : 0.0;
    uniform_(*bias, gen, -bound, bound);
  }
}

}  // namespace recon::nn
