// train_multiview: method 1 end to end (DESIGN.md). Trains the convolutional
// autoencoder on one normal class (loss MSE, optionally + lambda (1 - SSIM)),
// measures the three views (mse, ssim, feature) and the five difficulty
// measures on held-out calibration normals and on the test set, and prints
// the ablation: the image AUROC of every view and of the fused score under
// every normalisation (none, ratio, residual), beside the AUROC of each
// difficulty measure alone (the entropy confound). Writes metrics.json with
// every number of the tables and checkpoint.safetensors (model + the
// calibration of --difficulty / --normalization) to --out. The data: an IDX
// set's one-class protocol (Fashion-MNIST by default), or an MVTec category,
// a PIPED class or the folder layout (apps/anomaly_data.hpp, the flags of
// train_twostage).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "apps/anomaly_data.hpp"
#include "apps/cli.hpp"
#include "data/idx.hpp"
#include "data/loader.hpp"
#include "data/one_class.hpp"
#include "eval/metrics.hpp"
#include "models/conv_ae.hpp"
#include "models/difficulty.hpp"
#include "models/multiview.hpp"
#include "nn/checkpoint.hpp"
#include "nn/optim.hpp"
#include "runtime/error.hpp"
#include "runtime/ops.hpp"
#include "runtime/profile.hpp"

using namespace recon;
namespace fs = std::filesystem;
using models::DifficultyMeasure;
using models::Normalization;

namespace {

struct Config {
  apps::DataSpec data;  // --dataset, --data, --category, ..., --calibration-fraction
  int normal_class = 0;
  // 15 epochs: the held-out normal loss (printed each epoch) is then within
  // ~15% of its value after 40 epochs and falls by under 1.5% an epoch; 3-10 s
  // an epoch for the 5400 training normals of a Fashion-MNIST class on 2
  // shared CPU cores, so the default run takes 1-3 minutes.
  int epochs = 15;
  int batch_size = 64;
  float lr = 1e-3f;
  int latent = 32;
  int width = 32;
  float ssim_weight = 0.f;  // lambda of the (1 - SSIM) term; 0: plain MSE, the thesis's baseline loss
  double threshold_quantile = 0.99;  // of the calibration normals' fused scores: the stored decision threshold
  int channels = 1, height = 28, width_px = 28;  // the images' shape, set from the data (for recon_eval/predict)
  std::string difficulty = "entropy";
  std::string normalization = "residual";
  std::string weights = "1,1,1";
  uint64_t seed = 0;
  std::string out = "runs/train_multiview";
  std::string device = "cpu";
};

const std::vector<std::string> kRows = {models::kViewMse, models::kViewSsim, models::kViewFeature, "fused"};

nn::Json config_json(const Config& c) {
  nn::Json j = nn::Json::object();
  j.set("app", nn::Json("train_multiview"));
  if (apps::is_idx_kind(c.data)) {
    // IDX sets keep the key recon_eval and scripts/results_table.py read.
    j.set("data_dir", nn::Json(c.data.path.empty() ? std::string(data::kFashionMnistDir) : c.data.path));
  } else {
    apps::set_data_json(j, c.data);  // the keys of train_twostage's config: recon_eval's default test set
  }
  j.set("normal_class", nn::Json(c.normal_class));
  j.set("epochs", nn::Json(c.epochs));
  j.set("batch_size", nn::Json(c.batch_size));
  j.set("lr", nn::Json((double)c.lr));
  j.set("latent", nn::Json(c.latent));
  j.set("width", nn::Json(c.width));
  j.set("ssim_weight", nn::Json((double)c.ssim_weight));
  j.set("calibration_fraction", nn::Json(c.data.calibration_fraction));
  j.set("threshold_quantile", nn::Json(c.threshold_quantile));
  j.set("image", nn::Json::array({nn::Json(c.channels), nn::Json(c.height), nn::Json(c.width_px)}));
  j.set("difficulty", nn::Json(c.difficulty));
  j.set("normalization", nn::Json(c.normalization));
  j.set("weights", nn::Json(c.weights));
  j.set("seed", nn::Json((uint64_t)c.seed));
  return j;
}

std::vector<double> parse_weights(const std::string& s) {
  std::vector<double> w;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t used = 0;
    double v = 0;
    try {
      v = std::stod(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    RECON_CHECK(used == item.size() && !item.empty() && std::isfinite(v),
                "--weights: '" << item << "' is not a number (expected three, e.g. 1,1,1)");
    w.push_back(v);
  }
  RECON_CHECK(w.size() == 3, "--weights: expected 3 numbers (mse, ssim, feature), got " << w.size());
  return w;
}

// The per-image numbers of a dataset: every view's error, every difficulty
// measure, the labels.
struct Measured {
  models::ViewErrors errors;
  std::map<DifficultyMeasure, std::vector<float>> difficulty;
  std::vector<int> labels;
};

Measured measure_dataset(models::ConvAE& model, const models::MultiViewScorer& scorer, const data::DatasetPtr& ds,
                         Device device, const data::Transform& transform, const models::DifficultyOptions& dopt,
                         const std::string& label) {
  RECON_RANGE("measure_dataset");
  NoGradGuard no_grad;
  data::LoaderOptions lo;
  lo.batch_size = 256;
  lo.shuffle = false;
  lo.device = device;
  lo.transform = transform;
  data::DataLoader loader(ds, lo);
  loader.start_epoch(0);
  Measured m;
  apps::Progress bar(label, (int64_t)ds->size());
  int64_t seen = 0;
  while (auto batch = loader.next()) {
    const Tensor x_hat = model(batch->images);
    m.errors.append(scorer.errors(batch->images, x_hat));
    for (DifficultyMeasure dm : models::all_difficulty_measures()) {
      const std::vector<float> d = models::difficulty(batch->images, dm, dopt);
      auto& dst = m.difficulty[dm];
      dst.insert(dst.end(), d.begin(), d.end());
    }
    for (float l : batch->labels.to_vector()) m.labels.push_back((int)l);
    seen += batch->size();
    bar.update(seen, "");
  }
  bar.finish();
  return m;
}

// The training loss on the held-out normals (no tape): what the epochs and
// the SSIM weight may be chosen by, never the test labels.
double heldout_loss(models::ConvAE& model, const data::DatasetPtr& ds, Device device, const data::Transform& transform,
                    float ssim_weight) {
  NoGradGuard no_grad;
  data::LoaderOptions lo;
  lo.batch_size = 256;
  lo.shuffle = false;
  lo.device = device;
  lo.transform = transform;
  data::DataLoader loader(ds, lo);
  loader.start_epoch(0);
  double sum = 0;
  int64_t n = 0;
  while (auto batch = loader.next()) {
    const Tensor x_hat = model(batch->images);
    Tensor loss = mse_loss(x_hat, batch->images);
    if (ssim_weight > 0) loss = add(loss, scale(ssim_loss(x_hat, batch->images), ssim_weight));
    sum += (double)loss.item() * (double)batch->size();
    n += batch->size();
  }
  return n > 0 ? sum / (double)n : 0.0;
}

// --device auto on a machine with CUDA: one tiny training step and one scoring
// pass on the device with every op this app uses. Returns an empty string
// when all ran, else the reason (an op without a CUDA kernel).
std::string probe_cuda(const models::ConvAEConfig& mc, const Config& cfg, Device device) {
  try {
    Generator gen(cfg.seed);
    models::ConvAE probe(mc, gen);
    probe.to(device);
    nn::Adam opt(probe.named_parameters());
    Tensor x = Tensor::uniform({2, mc.channels, mc.height, mc.width}, gen).to(device);
    Tensor x_hat = probe(x);
    Tensor loss = add(mse_loss(x_hat, x), scale(ssim_loss(x_hat, x), 1.f));
    loss.backward();
    opt.step();
    NoGradGuard no_grad;
    models::MultiViewScorer scorer([&probe](const Tensor& t) { return probe.features(t); });
    x_hat = probe(x);
    (void)scorer.errors(x, x_hat);
    (void)scorer.pixel_map(x, x_hat);
    for (DifficultyMeasure dm : models::all_difficulty_measures()) (void)models::difficulty(x, dm);
    return "";
  } catch (const Error& e) {
    const std::string what = e.what();
    if (what.find("not implemented on CUDA") == std::string::npos) throw;
    return what;
  }
}

double pearson(const std::vector<float>& a, const std::vector<float>& b) {
  const double n = (double)a.size();
  double ma = 0, mb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    ma += a[i];
    mb += b[i];
  }
  ma /= n;
  mb /= n;
  double sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) * (a[i] - ma);
    sbb += (b[i] - mb) * (b[i] - mb);
  }
  return saa > 0 && sbb > 0 ? sab / std::sqrt(saa * sbb) : 0.0;
}

std::vector<float> as_float(const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); }

int run(Config cfg) {
  const std::vector<double> weights = parse_weights(cfg.weights);
  const Normalization ckpt_norm = models::parse_normalization(cfg.normalization);
  std::vector<DifficultyMeasure> tables;
  if (cfg.difficulty == "all")
    tables = models::all_difficulty_measures();
  else
    tables = {models::parse_difficulty_measure(cfg.difficulty)};
  RECON_CHECK(cfg.epochs >= 0 && cfg.batch_size > 0, "--epochs must be >= 0 and --batch-size > 0");
  RECON_CHECK(cfg.threshold_quantile > 0 && cfg.threshold_quantile <= 1,
              "--threshold-quantile must lie in (0, 1], got " << cfg.threshold_quantile);
  RECON_CHECK(cfg.ssim_weight >= 0, "--ssim-weight must be >= 0, got " << cfg.ssim_weight);

  Device device = parse_device(cfg.device);
  models::ConvAEConfig mc;
  mc.latent = cfg.latent;
  mc.width1 = cfg.width;
  if (cfg.device == "auto" && device.is_cuda()) {
    const std::string why = probe_cuda(mc, cfg, device);
    if (!why.empty()) {
      std::printf("train_multiview: --device auto: CUDA is present but an op this app needs has no CUDA kernel "
                  "(%s); running on the CPU\n",
                  why.c_str());
      device = Device::cpu();
    }
  }

  // --data without --dataset names an IDX folder, as before --dataset existed.
  if (cfg.data.kind == "fashion-mnist" && !cfg.data.path.empty() && cfg.data.path != data::kFashionMnistDir)
    cfg.data.kind = "idx";
  apps::check_data_kind(cfg.data);
  if (cfg.data.kind == "piped")  // absolute, so that recon_eval finds the test set from anywhere
    cfg.data.path = fs::absolute(apps::resolve_piped_root(cfg.data.path.empty() ? apps::kPipedDefaultDir
                                                                                 : cfg.data.path))
                        .lexically_normal()
                        .string();
  // Fashion-MNIST through load_fashion_mnist, whose error names the Debian package when it is missing.
  const apps::AnomalyData d = apps::load_anomaly_data(
      cfg.data, apps::is_idx_kind(cfg.data) ? std::to_string(cfg.normal_class) : std::string(), cfg.seed);
  // Images of mixed sizes kept as stored, or of mixed channel counts, would
  // stop the run only when a batch mixes them (the test set's, after
  // training): refused here instead.
  apps::check_one_image_shape(cfg.data, d, "train_multiview");
  std::printf("train_multiview: %s, %d epochs, batch %d, ssim weight %g, device %s\n", d.description.c_str(),
              cfg.epochs, cfg.batch_size, cfg.ssim_weight, device.str().c_str());
  mc.channels = d.channels;
  mc.height = d.height;
  mc.width = d.width;
  cfg.channels = mc.channels;
  cfg.height = mc.height;
  cfg.width_px = mc.width;
  const data::AnomalySplit& split = d.split;
  RECON_CHECK(split.calibration->size() >= 2, "train_multiview: the calibration needs at least 2 normal images, got "
                                                  << split.calibration->size()
                                                  << " (raise --calibration-fraction)");
  std::printf("  train %zu normal images, calibration %zu (held-out normals), test %zu\n", split.train->size(),
              split.calibration->size(), split.test->size());

  Generator init_gen(cfg.seed);
  models::ConvAE model(mc, init_gen);
  model.to(device);
  nn::AdamOptions ao;
  ao.lr = cfg.lr;
  nn::Adam opt(model.named_parameters(), ao);
  std::printf("  model: %lld parameters, latent %d\n", (long long)model.num_parameters(), cfg.latent);

  fs::create_directories(cfg.out);
  const std::string ckpt = (fs::path(cfg.out) / "checkpoint.safetensors").string();
  const std::string metrics_path = (fs::path(cfg.out) / "metrics.json").string();

  // ---- training ----------------------------------------------------------------
  data::LoaderOptions lo;
  lo.batch_size = cfg.batch_size;
  lo.seed = cfg.seed;
  lo.device = device;
  lo.transform = d.transform;
  data::DataLoader loader(split.train, lo);
  const auto t0 = std::chrono::steady_clock::now();
  double last_loss = 0, last_heldout = 0;
  for (int epoch = 0; epoch < cfg.epochs; ++epoch) {
    RECON_RANGE("train_multiview_epoch");
    model.train();
    loader.start_epoch(epoch);
    apps::Progress bar("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(cfg.epochs),
                       (int64_t)split.train->size());
    double loss_sum = 0;
    int64_t seen = 0;
    while (auto batch = loader.next()) {
      opt.zero_grad();
      const Tensor x_hat = model(batch->images);
      Tensor loss = mse_loss(x_hat, batch->images);
      if (cfg.ssim_weight > 0) loss = add(loss, scale(ssim_loss(x_hat, batch->images), cfg.ssim_weight));
      loss.backward();
      opt.step();
      const float l = loss.item();
      RECON_CHECK(std::isfinite(l), "train_multiview: the loss became " << l << " at epoch " << epoch + 1);
      loss_sum += (double)l * (double)batch->size();
      seen += batch->size();
      char status[64];
      std::snprintf(status, sizeof status, "loss %.5f", loss_sum / (double)seen);
      bar.update(seen, status);
    }
    bar.finish();
    last_loss = seen > 0 ? loss_sum / (double)seen : 0.0;
    model.eval();
    last_heldout = heldout_loss(model, split.calibration, device, d.transform, cfg.ssim_weight);
    std::printf("  epoch %d: train loss %.5f, held-out normal loss %.5f\n", epoch + 1, last_loss, last_heldout);
    std::fflush(stdout);
    nn::save_checkpoint(ckpt, model, nullptr, config_json(cfg));  // the calibrated one replaces it at the end
  }
  const double train_secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  // ---- measuring: calibration normals and the test set ---------------------------
  const auto t1 = std::chrono::steady_clock::now();
  model.eval();
  models::ScorerOptions so;
  so.weights = weights;
  models::MultiViewScorer scorer([&model](const Tensor& x) { return model.features(x); }, so);
  const models::DifficultyOptions dopt;
  const Measured calib = measure_dataset(model, scorer, split.calibration, device, d.transform, dopt, "calibration");
  const Measured test = measure_dataset(model, scorer, split.test, device, d.transform, dopt, "test       ");
  const double eval_secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();

  // ---- the tables -----------------------------------------------------------------
  nn::Json metrics = config_json(cfg);
  metrics.set("device", nn::Json(device.str()));
  metrics.set("data_description", nn::Json(d.description));
  metrics.set("num_train", nn::Json((int64_t)split.train->size()));
  metrics.set("num_calibration", nn::Json((int64_t)split.calibration->size()));
  metrics.set("num_test", nn::Json((int64_t)split.test->size()));
  metrics.set("final_train_loss", nn::Json(last_loss));
  metrics.set("final_heldout_loss", nn::Json(last_heldout));
  metrics.set("train_seconds", nn::Json(train_secs));
  metrics.set("eval_seconds", nn::Json(eval_secs));
  nn::Json calib_raw = nn::Json::object();
  for (size_t v = 0; v < calib.errors.views.size(); ++v) {
    double s = 0;
    for (float e : calib.errors.error[v]) s += e;
    calib_raw.set(calib.errors.views[v], nn::Json(s / (double)calib.errors.num_images()));
  }
  metrics.set("calibration_mean_error", std::move(calib_raw));

  // The difficulty measures alone as detectors: AUROC of d (and, beside it,
  // of -d = 1 - AUROC: a value far below 0.5 means the anomalies are the
  // *simpler* images, the confound DESIGN.md describes).
  std::printf("\ndifficulty measures alone (test AUROC of d; of -d = 1 - that):\n");
  nn::Json diff_json = nn::Json::object();
  for (DifficultyMeasure dm : models::all_difficulty_measures()) {
    const double a = eval::auroc(test.difficulty.at(dm), test.labels);
    std::printf("  %-14s %.4f   (-d: %.4f)\n", models::difficulty_measure_name(dm), a, 1.0 - a);
    diff_json.set(models::difficulty_measure_name(dm), nn::Json(a));
  }
  metrics.set("difficulty_auroc", std::move(diff_json));

  nn::Json ablation = nn::Json::object(), correlation = nn::Json::object();
  models::Calibration ckpt_calib;
  for (DifficultyMeasure dm : tables) {
    const char* dname = models::difficulty_measure_name(dm);
    const std::vector<float>& d_cal = calib.difficulty.at(dm);
    const std::vector<float>& d_test = test.difficulty.at(dm);
    std::printf("\nimage AUROC, %s, difficulty measure %s (fused = %s-weighted sum of z-scores)\n",
                d.description.c_str(), dname, cfg.weights.c_str());
    std::printf("  %-9s %9s %9s %9s   corr(e, d) on calibration normals\n", "view", "none", "ratio", "residual");
    std::map<std::string, std::vector<double>> row;  // view -> AUROC per normalisation
    nn::Json table = nn::Json::object();
    for (Normalization nz : models::all_normalizations()) {
      const models::Calibration c = models::fit_calibration(calib.errors, d_cal, dm, nz, weights);
      if (dm == tables.front() && nz == ckpt_norm) ckpt_calib = c;
      const models::Scores s = models::apply_calibration(c, test.errors, d_test);
      nn::Json col = nn::Json::object();
      for (size_t v = 0; v < s.views.size(); ++v) {
        const double a = eval::auroc(as_float(s.z[v]), test.labels);
        row[s.views[v]].push_back(a);
        col.set(s.views[v], nn::Json(a));
      }
      const double fused = eval::auroc(as_float(s.fused), test.labels);
      row["fused"].push_back(fused);
      col.set("fused", nn::Json(fused));
      table.set(models::normalization_name(nz), std::move(col));
    }
    nn::Json corr = nn::Json::object();
    for (const std::string& view : kRows) {
      std::printf("  %-9s %9.4f %9.4f %9.4f", view.c_str(), row[view][0], row[view][1], row[view][2]);
      if (view != "fused") {
        const double r = pearson(calib.errors.view(view), d_cal);
        corr.set(view, nn::Json(r));
        std::printf("   %+.3f", r);
      }
      std::printf("\n");
    }
    ablation.set(dname, std::move(table));
    correlation.set(dname, std::move(corr));
  }
  metrics.set("ablation", std::move(ablation));
  metrics.set("calibration_correlation", std::move(correlation));

  // ---- outputs ------------------------------------------------------------------------
  // The decision threshold: a quantile of the calibration normals' fused scores.
  const std::string threshold_warning = models::fit_threshold_quantile(
      ckpt_calib, models::apply_calibration(ckpt_calib, calib.errors, calib.difficulty.at(ckpt_calib.measure)).fused,
      cfg.threshold_quantile);
  if (!threshold_warning.empty()) std::printf("  warning: %s\n", threshold_warning.c_str());
  models::save_scored_checkpoint(ckpt, model, ckpt_calib, config_json(cfg));
  nn::Json ck = nn::Json::object();
  ck.set("measure", nn::Json(models::difficulty_measure_name(ckpt_calib.measure)));
  ck.set("normalization", nn::Json(models::normalization_name(ckpt_calib.normalization)));
  ck.set("threshold", nn::Json(ckpt_calib.threshold));
  ck.set("threshold_rule", nn::Json(ckpt_calib.threshold_rule));
  metrics.set("checkpoint_calibration", std::move(ck));
  {
    std::ofstream f(metrics_path);
    f << metrics.dump(2) << "\n";
    RECON_CHECK(f.good(), "train_multiview: could not write " << metrics_path);
  }
  std::printf("\ntraining %.1f s, measuring %.1f s; wrote %s (calibration: %s, %s) and %s\n", train_secs, eval_secs,
              ckpt.c_str(), models::difficulty_measure_name(ckpt_calib.measure),
              models::normalization_name(ckpt_calib.normalization), metrics_path.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  apps::Cli cli("train_multiview",
                "Method 1: trains a convolutional autoencoder on one normal class (Fashion-MNIST by default; or an "
                "MVTec category, a PIPED class, a folder of normal images), "
                "calibrates the multi-view reconstruction error (mse, ssim, feature) on held-out normals and "
                "prints the test image AUROC of every view and of the fused score under each difficulty "
                "normalisation (none, ratio, residual), beside the AUROC of each difficulty measure alone.");
  apps::add_data_flags(cli, cfg.data, cfg.normal_class, "unused by this app");
  cli.add("--epochs", cfg.epochs, "training epochs");
  cli.add("--batch-size", cfg.batch_size, "images per training step");
  cli.add("--lr", cfg.lr, "Adam learning rate");
  cli.add("--latent", cfg.latent, "bottleneck size");
  cli.add("--width", cfg.width, "channels of the first convolution (the second has twice as many)");
  cli.add("--ssim-weight", cfg.ssim_weight, "lambda: training loss = MSE + lambda (1 - SSIM); 0 = MSE only");
  cli.add("--threshold-quantile", cfg.threshold_quantile,
          "the checkpoint's decision threshold: this quantile of the calibration normals' fused scores");
  cli.add("--difficulty", cfg.difficulty,
          "difficulty measure of the table: entropy, local-entropy, gradient, compression, lowpass, or all "
          "(one table each); the first is the checkpoint's");
  cli.add("--normalization", cfg.normalization, "normalisation of the calibration saved in the checkpoint: none, "
                                                "ratio or residual (the table shows all three)");
  cli.add("--weights", cfg.weights, "weights of the mse, ssim and feature z-scores in the fused score");
  cli.add("--seed", cfg.seed, "seed for initialisation, splits and shuffling");
  cli.add("--out", cfg.out, "output folder (checkpoint.safetensors, metrics.json)");
  cli.add("--device", cfg.device,
          "cpu, cuda or auto (auto: CUDA when present and every op this app uses has a CUDA kernel, "
          "checked with one tiny step; else the CPU, saying why)");
  cli.parse(argc, argv);
  try {
    return run(cfg);
  } catch (const std::exception& e) {
    const std::string what = e.what();
    std::fprintf(stderr, "train_multiview: error: %s\n", what.c_str());
    if (what.find("not implemented on CUDA") != std::string::npos)
      std::fprintf(stderr, "train_multiview: an op this app needs has no CUDA kernel yet; run with --device cpu "
                           "(or --device auto, which checks first)\n");
    return 1;
  }
}
