// train_ae: the plain convolutional autoencoder baseline (AE + pixel MSE) on
// the one-class protocol. Trains on normal images of one class, scores every
// test image by its reconstruction MSE and reports the image AUROC. This is
// the most complete program until train_twostage exists (run.sh runs it).
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "apps/cli.hpp"
#include "data/idx.hpp"
#include "data/loader.hpp"
#include "data/one_class.hpp"
#include "eval/metrics.hpp"
#include "models/conv_ae.hpp"
#include "nn/checkpoint.hpp"
#include "nn/optim.hpp"
#include "runtime/ops.hpp"
#include "runtime/error.hpp"
#include "runtime/profile.hpp"

using namespace recon;
namespace fs = std::filesystem;

namespace {

struct Config {
  std::string data_dir = data::kFashionMnistDir;
  int normal_class = 0;
  int epochs = 5;
  int batch_size = 64;
  float lr = 1e-3f;
  int latent = 32;
  int width = 32;
  double calibration_fraction = 0.1;
  uint64_t seed = 0;
  std::string out = "runs/train_ae";
  std::string device = "cpu";
  bool resume = false;
};

nn::Json config_json(const Config& c, int epochs_done) {
  nn::Json j = nn::Json::object();
  j.set("app", nn::Json("train_ae"));
  j.set("data_dir", nn::Json(c.data_dir));
  j.set("normal_class", nn::Json((int64_t)c.normal_class));
  j.set("epochs", nn::Json((int64_t)c.epochs));
  j.set("batch_size", nn::Json((int64_t)c.batch_size));
  j.set("lr", nn::Json((double)c.lr));
  j.set("latent", nn::Json((int64_t)c.latent));
  j.set("width", nn::Json((int64_t)c.width));
  j.set("calibration_fraction", nn::Json(c.calibration_fraction));
  j.set("seed", nn::Json((uint64_t)c.seed));
  j.set("epochs_done", nn::Json((int64_t)epochs_done));
  return j;
}

// Per-image reconstruction MSE over a whole dataset, in order.
std::vector<float> score_dataset(models::ConvAE& model, const data::DatasetPtr& ds, int batch_size, Device device,
                                 std::vector<int>* labels) {
  NoGradGuard no_grad;
  data::LoaderOptions lo;
  lo.batch_size = batch_size;
  lo.shuffle = false;
  lo.device = device;
  data::DataLoader loader(ds, lo);
  loader.start_epoch(0);
  std::vector<float> scores;
  while (auto batch = loader.next()) {
    Tensor err = mean(pow(sub(model(batch->images), batch->images), 2.f), {1, 2, 3});
    for (float v : err.to_vector()) scores.push_back(v);
    if (labels)
      for (float l : batch->labels.to_vector()) labels->push_back((int)l);
  }
  return scores;
}

int run(const Config& cfg) {
  const Device device = parse_device(cfg.device);
  std::printf("train_ae: Fashion-MNIST from %s, normal class %d, %d epochs, batch %d, device %s\n",
              cfg.data_dir.c_str(), cfg.normal_class, cfg.epochs, cfg.batch_size, device.str().c_str());
  auto train_all = data::load_fashion_mnist(data::Split::Train, cfg.data_dir);
  auto test_all = data::load_fashion_mnist(data::Split::Test, cfg.data_dir);
  data::AnomalySplit split =
      data::one_class_split(train_all, test_all, cfg.normal_class, cfg.calibration_fraction, cfg.seed);
  std::printf("  train %zu normal images, calibration %zu, test %zu\n", split.train->size(),
              split.calibration->size(), split.test->size());

  Generator init_gen(cfg.seed);
  models::ConvAEConfig mc;
  mc.latent = cfg.latent;
  mc.width1 = cfg.width;
  models::ConvAE model(mc, init_gen);
  model.to(device);
  nn::AdamOptions ao;
  ao.lr = cfg.lr;
  nn::Adam opt(model.named_parameters(), ao);
  std::printf("  model: %lld parameters, latent %d\n", (long long)model.num_parameters(), cfg.latent);

  fs::create_directories(cfg.out);
  const std::string ckpt = (fs::path(cfg.out) / "checkpoint.safetensors").string();
  int start_epoch = 0;
  if (cfg.resume && fs::exists(ckpt)) {
    nn::Json saved = nn::load_checkpoint(ckpt, model, &opt);
    start_epoch = (int)saved.at("epochs_done").as_int();
    std::printf("  resumed from %s after epoch %d\n", ckpt.c_str(), start_epoch);
  }

  data::LoaderOptions lo;
  lo.batch_size = cfg.batch_size;
  lo.seed = cfg.seed;
  lo.device = device;
  data::DataLoader loader(split.train, lo);
  const auto t0 = std::chrono::steady_clock::now();
  for (int epoch = start_epoch; epoch < cfg.epochs; ++epoch) {
    RECON_RANGE("train_ae_epoch");
    model.train();
    loader.start_epoch(epoch);
    apps::Progress bar("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(cfg.epochs),
                       (int64_t)split.train->size());
    double loss_sum = 0;
    int64_t seen = 0;
    while (auto batch = loader.next()) {
      opt.zero_grad();
      Tensor loss = mse_loss(model(batch->images), batch->images);
      loss.backward();
      opt.step();
      const float l = loss.item();
      RECON_CHECK(std::isfinite(l), "train_ae: the loss became " << l << " at epoch " << epoch + 1
                                                                 << "; the last good checkpoint is " << ckpt);
      loss_sum += (double)l * (double)batch->size();
      seen += batch->size();
      char status[64];
      std::snprintf(status, sizeof status, "loss %.5f", loss_sum / (double)seen);
      bar.update(seen, status);
    }
    bar.finish();
    nn::save_checkpoint(ckpt, model, &opt, config_json(cfg, epoch + 1));
  }
  const double train_secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  model.eval();
  std::vector<float> calib = score_dataset(model, split.calibration, 256, device, nullptr);
  std::vector<int> labels;
  std::vector<float> scores = score_dataset(model, split.test, 256, device, &labels);
  double calib_mean = 0;
  for (float s : calib) calib_mean += s;
  calib_mean /= (double)std::max<size_t>(1, calib.size());
  const double auc = eval::auroc(scores, labels);
  std::printf("\nheld-out normal MSE %.5f | test image AUROC (pixel MSE) %.4f | training %.1f s\n", calib_mean, auc,
              train_secs);

  std::ofstream(fs::path(cfg.out) / "metrics.json")
      << "{\"normal_class\": " << cfg.normal_class << ", \"auroc_mse\": " << auc
      << ", \"calibration_mse\": " << calib_mean << ", \"train_seconds\": " << train_secs << "}\n";
  std::printf("wrote %s and %s\n", ckpt.c_str(), (fs::path(cfg.out) / "metrics.json").c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  apps::Cli cli("train_ae",
                "Trains a convolutional autoencoder on one normal class of Fashion-MNIST and reports the image "
                "AUROC of its reconstruction MSE (the AE + MSE baseline).");
  cli.add("--data", cfg.data_dir, "Fashion-MNIST IDX folder (Debian package dataset-fashion-mnist)");
  cli.add("--normal-class", cfg.normal_class, "the normal class, 0-9");
  cli.add("--epochs", cfg.epochs, "training epochs");
  cli.add("--batch-size", cfg.batch_size, "images per training step");
  cli.add("--lr", cfg.lr, "Adam learning rate");
  cli.add("--latent", cfg.latent, "bottleneck size");
  cli.add("--width", cfg.width, "channels of the first convolution");
  cli.add("--calibration-fraction", cfg.calibration_fraction, "normal training images held out for calibration");
  cli.add("--seed", cfg.seed, "seed for initialisation, splits and shuffling");
  cli.add("--out", cfg.out, "output folder (checkpoint.safetensors, metrics.json)");
  cli.add("--device", cfg.device, "cpu, cuda or auto (the CUDA kernels do not exist yet)");
  cli.add_switch("--resume", cfg.resume, "continue from <out>/checkpoint.safetensors");
  cli.parse(argc, argv);
  try {
    return run(cfg);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "train_ae: error: %s\n", e.what());
    return 1;
  }
}
