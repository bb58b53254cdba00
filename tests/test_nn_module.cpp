// nn/module, nn/init and nn/checkpoint with modules: parameter and buffer
// names of nested models, state_dict order, a model + optimizer round trip
// through a checkpoint, load errors, freeze/unfreeze, train/eval propagation,
// device moves in place, and the initialisers' ranges and statistics.
// (Forward passes of the layers are in test_nn_layers.cpp.)
#include <doctest/doctest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "nn/checkpoint.hpp"
#include "nn/init.hpp"
#include "nn/layers.hpp"
#include "nn/module.hpp"
#include "nn/optim.hpp"
#include "runtime/error.hpp"

using namespace recon;
using namespace recon::nn;
namespace fs = std::filesystem;

namespace {

// A small model: Sequential(Conv2d(1, 4, 3), BatchNorm2d(4), ReLU, Flatten, Linear(16, 2)).
std::shared_ptr<Sequential> small_model(Generator& gen) {
  return make_sequential(std::make_shared<Conv2d>(1, 4, 3, 1, 0, true, gen), std::make_shared<BatchNorm2d>(4),
                         std::make_shared<ReLU>(), std::make_shared<Flatten>(),
                         std::make_shared<Linear>(16, 2, true, gen));
}

// An encoder/decoder pair nested one level deeper.
class TinyAE : public Module {
 public:
  explicit TinyAE(Generator& gen) {
    encoder_ = register_module("encoder", small_model(gen));
    decoder_ = register_module("decoder", make_sequential(std::make_shared<Linear>(2, 3, false, gen),
                                                          std::make_shared<Tanh>()));
    scale_ = register_parameter("scale", Tensor::ones({1}));
  }
  std::string type_name() const override { return "TinyAE"; }
  std::shared_ptr<Sequential> encoder_, decoder_;
  Tensor scale_;
};

fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("reconad_test_nn_module_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::vector<std::string> names_of(const std::vector<std::pair<std::string, Tensor>>& v) {
  std::vector<std::string> out;
  for (const auto& kv : v) out.push_back(kv.first);
  return out;
}

}  // namespace

TEST_CASE("module: parameter and buffer names, counts and state_dict order of a Sequential") {
  Generator gen(1);
  auto m = small_model(gen);
  CHECK(m->size() == 5);
  CHECK(names_of(m->named_parameters()) ==
        std::vector<std::string>{"0.weight", "0.bias", "1.weight", "1.bias", "4.weight", "4.bias"});
  CHECK(names_of(m->named_buffers()) == std::vector<std::string>{"1.running_mean", "1.running_var"});
  CHECK(m->state_dict().names() == std::vector<std::string>{"0.weight", "0.bias", "1.weight", "1.bias",
                                                            "1.running_mean", "1.running_var", "4.weight", "4.bias"});
  // 4*1*3*3 + 4 + 4 + 4 + 2*16 + 2
  CHECK(m->num_parameters() == 36 + 4 + 8 + 32 + 2);
  CHECK(m->parameters().size() == 6);
  for (const Tensor& p : m->parameters()) CHECK(p.requires_grad());
  auto& conv = dynamic_cast<Conv2d&>((*m)[0]);
  CHECK(conv.weight().shape() == Shape{4, 1, 3, 3});
  // The registry holds the layer's own handles, not copies.
  CHECK(m->state_dict().at("0.weight").impl() == conv.weight().impl());
  CHECK_THROWS_WITH_AS((*m)[5], doctest::Contains("index 5 out of range for 5 modules"), Error);
  CHECK(m->str().find("(0): Conv2d(1, 4, kernel_size=3, stride=1)") != std::string::npos);
  CHECK(m->str().find("(4): Linear(in_features=16, out_features=2, bias=true)") != std::string::npos);
}

TEST_CASE("module: nested names and registration errors") {
  Generator gen(2);
  TinyAE ae(gen);
  CHECK(names_of(ae.named_parameters()) ==
        std::vector<std::string>{"scale", "encoder.0.weight", "encoder.0.bias", "encoder.1.weight", "encoder.1.bias",
                                 "encoder.4.weight", "encoder.4.bias", "decoder.0.weight"});
  CHECK(ae.state_dict().contains("encoder.1.running_var"));
  CHECK_FALSE(ae.state_dict().contains("decoder.0.bias"));  // Linear(bias = false)
  Sequential s;
  s.push_back("enc", std::make_shared<ReLU>());
  CHECK_THROWS_WITH_AS(s.push_back("enc", std::make_shared<ReLU>()), doctest::Contains("\"enc\" is already registered"),
                       Error);
  CHECK_THROWS_WITH_AS(s.push_back("a.b", std::make_shared<ReLU>()), doctest::Contains("contain no '.'"), Error);
  CHECK_THROWS_WITH_AS(ae.forward(Tensor::zeros({1})), doctest::Contains("TinyAE::forward(Tensor) is not defined"),
                       Error);
}

TEST_CASE("module: freeze and unfreeze reach every parameter; train/eval propagate") {
  Generator gen(3);
  TinyAE ae(gen);
  CHECK(ae.is_training());
  ae.encoder_->freeze();
  for (const auto& [name, p] : ae.named_parameters())
    CHECK_MESSAGE(p.requires_grad() == (name.rfind("encoder.", 0) != 0), name);
  ae.freeze();
  for (const Tensor& p : ae.parameters()) CHECK_FALSE(p.requires_grad());
  ae.unfreeze();
  for (const Tensor& p : ae.parameters()) CHECK(p.requires_grad());

  ae.eval();
  CHECK_FALSE(ae.is_training());
  CHECK_FALSE(ae.encoder_->is_training());
  CHECK_FALSE((*ae.encoder_)[1].is_training());  // BatchNorm two levels down
  CHECK_FALSE((*ae.decoder_)[1].is_training());
  ae.train();
  CHECK((*ae.encoder_)[1].is_training());
  ae.decoder_->eval();  // a subtree alone
  CHECK_FALSE((*ae.decoder_)[0].is_training());
  CHECK((*ae.encoder_)[0].is_training());
  CHECK(ae.is_training());
}

TEST_CASE("module: zero_grad drops gradients; load_state_dict copies values and names mismatches") {
  Generator g1(10), g2(20);
  auto a = small_model(g1);
  auto b = small_model(g2);
  CHECK(a->state_dict().at("0.weight").to_vector() != b->state_dict().at("0.weight").to_vector());
  Tensor bw = b->state_dict().at("0.weight");
  b->load_state_dict(a->state_dict());
  for (const auto& [name, t] : a->state_dict()) CHECK_MESSAGE(b->state_dict().at(name).to_vector() == t.to_vector(), name);
  CHECK(b->state_dict().at("0.weight").impl() == bw.impl());  // in place
  CHECK_FALSE(b->state_dict().at("0.weight").shares_storage(a->state_dict().at("0.weight")));

  Generator g3(30);
  Sequential other{std::make_shared<Conv2d>(1, 5, 3, 1, 0, true, g3), std::make_shared<BatchNorm2d>(4)};
  CHECK_THROWS_WITH_AS(other.load_state_dict(a->state_dict()),
                       doctest::Contains("Sequential::load_state_dict: state does not match; unexpected (2): 4.weight, "
                                         "4.bias; wrong shape (2): 0.weight (expected (5, 1, 3, 3), got (4, 1, 3, 3)), "
                                         "0.bias (expected (5), got (4))"),
                       Error);

  for (Tensor p : a->parameters()) p.set_grad(Tensor::ones(p.shape()));
  a->zero_grad();
  for (const Tensor& p : a->parameters()) CHECK_FALSE(p.grad().defined());
}

TEST_CASE("checkpoint: model + optimizer + config round trip through a file") {
  fs::path dir = temp_dir("ckpt");
  const std::string path = (dir / "model.safetensors").string();
  Generator g1(1), g2(2);
  TinyAE a(g1), b(g2);
  AdamW oa(a.named_parameters(), {.lr = 0.01f});
  AdamW ob(b.named_parameters(), {.lr = 0.01f});
  for (int s = 0; s < 2; ++s) {
    for (Tensor p : a.parameters()) p.set_grad(Tensor::full(p.shape(), 0.1f * (float)(s + 1)));
    oa.step();
  }
  Tensor rm = a.state_dict().at("encoder.1.running_mean");
  rm.copy_(Tensor::from_vector({1, 2, 3, 4}, {4}));  // a buffer with non-default values
  Json cfg = Json::object();
  cfg.set("latent", 2);
  cfg.set("model", "tiny");
  save_checkpoint(path, a, &oa, cfg, {{"epoch", "2"}});
  CHECK(read_checkpoint(path).metadata.at("epoch") == "2");

  Json got = load_checkpoint(path, b, &ob);
  CHECK(got == cfg);
  for (const auto& [name, t] : a.state_dict()) CHECK_MESSAGE(b.state_dict().at(name).to_vector() == t.to_vector(), name);
  CHECK(ob.step_count() == 2);
  for (const auto& [name, t] : oa.state_dict()) CHECK_MESSAGE(ob.state_dict().at(name).to_vector() == t.to_vector(), name);
  CHECK(ob.state_dict().contains("encoder.0.weight.exp_avg"));

  // A model of another shape: every offending tensor is named, nothing changes.
  Generator g3(3);
  auto wrong = small_model(g3);
  std::vector<float> before = wrong->state_dict().at("0.weight").to_vector();
  CHECK_THROWS_WITH_AS(load_checkpoint(path, *wrong),
                       doctest::Contains("missing (8): 0.weight, 0.bias, 1.weight, 1.bias, 1.running_mean, "
                                         "1.running_var, 4.weight, 4.bias; unexpected (10): scale, encoder.0.weight"),
                       Error);
  CHECK_THROWS_WITH_AS(load_checkpoint(path, *wrong), doctest::Contains(("load_checkpoint: " + path).c_str()), Error);
  CHECK(wrong->state_dict().at("0.weight").to_vector() == before);
  // The wrong optimizer type, and a checkpoint without optimizer state.
  Adam plain(b.named_parameters());
  CHECK_THROWS_WITH_AS(load_checkpoint(path, b, &plain), doctest::Contains("optimizer state is for AdamW, not Adam"),
                       Error);
  save_checkpoint(path, a);
  CHECK_THROWS_WITH_AS(load_checkpoint(path, b, &ob), doctest::Contains("holds no optimizer state"), Error);
  CHECK(load_checkpoint(path, b).is_null());
  // Not strict: the encoder alone loads from a whole-model file's encoder part.
  StateDict enc;
  for (const auto& [name, t] : a.state_dict())
    if (name.rfind("encoder.", 0) == 0) enc.insert(name.substr(8), t);
  enc.insert("extra", Tensor::zeros({1}));
  auto e = small_model(g3);
  CHECK_THROWS_AS(e->load_state_dict(enc), Error);
  e->load_state_dict(enc, false);
  CHECK(e->state_dict().at("1.running_mean").to_vector() == std::vector<float>{1, 2, 3, 4});
  fs::remove_all(dir);
}

TEST_CASE("module: to(device) moves parameters, gradients and buffers in place" * doctest::skip(!cuda_available())) {
  Generator gen(4);
  auto m = small_model(gen);
  Tensor w = m->state_dict().at("0.weight");
  std::vector<float> values = w.to_vector();
  w.set_grad(Tensor::ones(w.shape()));
  m->to(Device::cuda());
  for (const auto& [name, t] : m->state_dict()) CHECK_MESSAGE(t.device().is_cuda(), name);
  CHECK(w.device().is_cuda());  // the old handle follows
  CHECK(w.grad().device().is_cuda());
  // A model on the device checkpoints and restores across devices.
  fs::path dir = temp_dir("device");
  const std::string path = (dir / "dev.safetensors").string();
  save_checkpoint(path, *m);
  Generator other(44);
  auto host = small_model(other);
  load_checkpoint(path, *host);
  CHECK(host->state_dict().at("0.weight").to_vector() == values);
  Tensor hw = host->state_dict().at("0.weight");
  hw.fill_(0.5f);
  m->load_state_dict(host->state_dict());
  CHECK(w.device().is_cuda());
  CHECK(w.to_vector() == std::vector<float>(values.size(), 0.5f));
  m->to(Device::cpu());
  CHECK(w.device().is_cpu());
  CHECK(w.to_vector() == std::vector<float>(values.size(), 0.5f));
  fs::remove_all(dir);
}

// ---- init -----------------------------------------------------------------------------------------------

TEST_CASE("init: fans, gains, ranges and statistics as torch.nn.init") {
  CHECK(fan_in_and_fan_out({8, 3, 5, 5}) == std::pair<int64_t, int64_t>{75, 200});
  CHECK(fan_in_and_fan_out({10, 20}) == std::pair<int64_t, int64_t>{20, 10});
  CHECK_THROWS_WITH_AS(fan_in_and_fan_out({5}), doctest::Contains("at least 2 dims"), Error);
  CHECK(calculate_gain(Nonlinearity::ReLU) == doctest::Approx(std::sqrt(2.0)));
  CHECK(calculate_gain(Nonlinearity::Tanh) == doctest::Approx(5.0 / 3.0));
  CHECK(calculate_gain(Nonlinearity::LeakyReLU, std::sqrt(5.0)) == doctest::Approx(std::sqrt(1.0 / 3.0)));
  CHECK(calculate_gain(Nonlinearity::Sigmoid) == 1.0);

  auto stats = [](const Tensor& t) {
    std::vector<float> v = t.to_vector();
    double s = 0, s2 = 0, mx = 0;
    for (float x : v) s += x, s2 += (double)x * x, mx = std::max(mx, (double)std::fabs(x));
    double mean = s / v.size();
    return std::array<double, 3>{mean, std::sqrt(s2 / v.size() - mean * mean), mx};
  };
  Generator gen(5);
  Tensor w = Tensor::empty({256, 128, 3, 3});  // fan_in 1152, fan_out 2304
  kaiming_uniform_(w, gen, 0, FanMode::FanIn, Nonlinearity::ReLU);
  auto s = stats(w);
  const double k_std = std::sqrt(2.0 / 1152);
  CHECK(s[2] <= std::sqrt(3.0) * k_std);
  CHECK(s[2] > 0.99 * std::sqrt(3.0) * k_std);
  CHECK(s[1] == doctest::Approx(k_std).epsilon(0.01));
  kaiming_normal_(w, gen, 0, FanMode::FanOut, Nonlinearity::ReLU);
  CHECK(stats(w)[1] == doctest::Approx(std::sqrt(2.0 / 2304)).epsilon(0.01));
  CHECK(std::fabs(stats(w)[0]) < 1e-4);
  xavier_uniform_(w, gen);
  const double x_std = std::sqrt(2.0 / (1152 + 2304));
  CHECK(stats(w)[2] <= std::sqrt(3.0) * x_std);
  CHECK(stats(w)[1] == doctest::Approx(x_std).epsilon(0.01));
  xavier_normal_(w, gen, 2.0);
  CHECK(stats(w)[1] == doctest::Approx(2.0 * x_std).epsilon(0.01));
  constant_(w, 0.25);
  CHECK(stats(w)[0] == doctest::Approx(0.25));

  // PyTorch's layer default: weight and bias within 1/sqrt(fan_in).
  Generator g(6);
  Conv2d conv(3, 8, 5, 1, 0, true, g);  // fan_in 75
  const double bound = 1.0 / std::sqrt(75.0);
  CHECK(stats(conv.weight())[2] <= bound);
  CHECK(stats(conv.weight())[2] > 0.9 * bound);
  CHECK(stats(conv.bias())[2] <= bound);
  ConvTranspose2d deconv(8, 3, 4, 2, 1, 0, true, g);  // weight (8, 3, 4, 4), fan_in = 3 * 16
  CHECK(deconv.weight().shape() == Shape{8, 3, 4, 4});
  CHECK(stats(deconv.weight())[2] <= 1.0 / std::sqrt(48.0));
  CHECK(stats(deconv.weight())[2] > 0.9 / std::sqrt(48.0));
  // Same seed, same weights; another seed, others.
  Generator a(7), b(7), c(8);
  CHECK(Linear(10, 4, true, a).weight().to_vector() == Linear(10, 4, true, b).weight().to_vector());
  CHECK(Linear(10, 4, true, a).weight().to_vector() != Linear(10, 4, true, c).weight().to_vector());
}
