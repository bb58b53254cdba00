// Weight initialisation, following torch.nn.init: Kaiming (He et al. 2015)
// and Xavier/Glorot (Glorot & Bengio 2010), uniform and normal variants, with
// PyTorch's fan and gain conventions. Every draw comes from a seeded
// recon::Generator; tensors are filled in place (any device).
#pragma once
#include <cstdint>
#include <utility>

#include "runtime/generator.hpp"
#include "runtime/tensor.hpp"

namespace recon::nn {

enum class Nonlinearity { Linear, Sigmoid, Tanh, ReLU, LeakyReLU };
enum class FanMode { FanIn, FanOut };

// PyTorch's calculate_gain: 1 (linear, sigmoid), 5/3 (tanh), sqrt(2) (relu),
// sqrt(2 / (1 + slope^2)) (leaky relu with negative slope `param`).
double calculate_gain(Nonlinearity nl, double param = 0.01);
// (fan_in, fan_out) of a weight of >= 2 dims: dim 1 (resp. 0) times the
// receptive field (the product of dims 2..). For a ConvTranspose2d weight
// (Cin, Cout, kh, kw) this is PyTorch's convention too: fan_in = Cout kh kw.
std::pair<int64_t, int64_t> fan_in_and_fan_out(const Shape& shape);

void uniform_(Tensor& t, Generator& gen, double lo, double hi);
void normal_(Tensor& t, Generator& gen, double mean, double stddev);
void constant_(Tensor& t, double value);

// std = gain / sqrt(fan); uniform bound = sqrt(3) std. `a` is the negative
// slope of a leaky relu (used only by Nonlinearity::LeakyReLU).
void kaiming_uniform_(Tensor& t, Generator& gen, double a = 0, FanMode mode = FanMode::FanIn,
                      Nonlinearity nl = Nonlinearity::LeakyReLU);
void kaiming_normal_(Tensor& t, Generator& gen, double a = 0, FanMode mode = FanMode::FanIn,
                     Nonlinearity nl = Nonlinearity::LeakyReLU);
// std = gain sqrt(2 / (fan_in + fan_out)); uniform bound = sqrt(3) std.
void xavier_uniform_(Tensor& t, Generator& gen, double gain = 1.0);
void xavier_normal_(Tensor& t, Generator& gen, double gain = 1.0);

// PyTorch's default for Conv*/Linear: weight kaiming_uniform_(a = sqrt(5))
// (a bound of 1/sqrt(fan_in)), bias uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)).
void default_layer_init(Tensor& weight, Tensor* bias, Generator& gen);

}  // namespace recon::nn
