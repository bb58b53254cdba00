// train_multiview end to end: the app binary on a tiny generated IDX dataset
// (class 0 smooth low-contrast ramps, class 1 uniform noise; 300 training and
// 100 test images), one epoch, all difficulty measures. Checks the exit code,
// every key of metrics.json, that the easy anomalies are found, and that the
// checkpoint restores the model and its calibration. Also the usage errors.
// tests/CMakeLists.txt passes the binary's path (RECON_TRAIN_MULTIVIEW_BIN)
// when the apps are built; without them the suite reports as skipped (77).
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "data/idx.hpp"
#include "app_test_util.hpp"
#include "idx_fixture.hpp"
#include "models/conv_ae.hpp"
#include "models/difficulty.hpp"
#include "models/multiview.hpp"
#include "nn/checkpoint.hpp"
#include "nn/json.hpp"
#include "runtime/generator.hpp"
#include "runtime/tensor.hpp"

using namespace recon;
namespace fs = std::filesystem;

namespace {

using recon_test::read_text;
using recon_test::run_shell;
using recon_test::write_idx_split;

}  // namespace

#ifndef RECON_TRAIN_MULTIVIEW_BIN
TEST_CASE("train_multiview end to end (skipped: the apps are not built)") { std::exit(77); }
#else

TEST_CASE("train_multiview trains, calibrates, writes metrics and a loadable checkpoint") {
  recon_test::TempDir tmp;
  const fs::path data_dir = tmp.path() / "data", out = tmp.path() / "out", log = tmp.path() / "log.txt";
  fs::create_directories(data_dir);
  write_idx_split(data_dir, "train", 300, 1);
  write_idx_split(data_dir, "t10k", 100, 2);
  const std::string bin = RECON_TRAIN_MULTIVIEW_BIN;
  const std::string cmd = bin + " --data " + data_dir.string() + " --out " + out.string() +
                          " --epochs 1 --batch-size 32 --width 8 --latent 16 --difficulty all --seed 3 > " +
                          log.string() + " 2>&1";
  const int rc = run_shell(cmd);
  INFO("log:\n" << read_text(log));
  REQUIRE(rc == 0);

  // metrics.json: every number of the tables.
  REQUIRE(fs::exists(out / "metrics.json"));
  const nn::Json m = nn::Json::parse(read_text(out / "metrics.json"));
  CHECK(m.at("app").as_string() == "train_multiview");
  CHECK(m.at("num_test").as_int() == 100);
  CHECK(m.at("num_train").as_int() + m.at("num_calibration").as_int() == 150);
  CHECK(m.at("train_seconds").as_number() >= 0);
  for (const char* view : {"mse", "ssim", "feature"}) CHECK(m.at("calibration_mean_error").at(view).as_number() > 0);
  for (models::DifficultyMeasure dm : models::all_difficulty_measures()) {
    const std::string name = models::difficulty_measure_name(dm);
    CAPTURE(name);
    const double a = m.at("difficulty_auroc").at(name).as_number();
    CHECK(a >= 0.0);
    CHECK(a <= 1.0);
    for (models::Normalization nz : models::all_normalizations()) {
      CAPTURE(models::normalization_name(nz));
      for (const char* row : {"mse", "ssim", "feature", "fused"}) {
        CAPTURE(row);
        const double v = m.at("ablation").at(name).at(models::normalization_name(nz)).at(row).as_number();
        CHECK(v >= 0.0);
        CHECK(v <= 1.0);
      }
    }
    for (const char* view : {"mse", "ssim", "feature"}) {
      const double r = m.at("calibration_correlation").at(name).at(view).as_number();
      CHECK(r >= -1.0);
      CHECK(r <= 1.0);
    }
  }
  // Noise against smooth ramps: the pixel error finds it even after one epoch.
  CHECK(m.at("ablation").at("entropy").at("none").at("mse").as_number() > 0.9);

  // The checkpoint: the model loads strictly, the calibration is the default
  // one (first measure of the table, residual) fitted on the held-out normals.
  const std::string ckpt = (out / "checkpoint.safetensors").string();
  REQUIRE(fs::exists(ckpt));
  const nn::Checkpoint ck = nn::read_checkpoint(ckpt);
  models::ConvAEConfig cfg;
  cfg.width1 = (int)ck.config.at("width").as_int();
  cfg.latent = (int)ck.config.at("latent").as_int();
  CHECK(cfg.width1 == 8);
  CHECK(cfg.latent == 16);
  models::ConvAE model(cfg);
  CHECK_NOTHROW(nn::load_checkpoint(ckpt, model));
  const models::Calibration c = models::load_calibration(ckpt);
  CHECK(c.fitted());
  CHECK(c.num_images == m.at("num_calibration").as_int());
  CHECK(c.measure == models::DifficultyMeasure::Entropy);
  CHECK(c.normalization == models::Normalization::Residual);
  REQUIRE(c.views.size() == 3);
  CHECK(c.views[2].name == "feature");
  models::MultiViewScorer scorer([&model](const Tensor& x) { return model.features(x); });
  CHECK_NOTHROW(scorer.set_calibration(c));
}

TEST_CASE("train_multiview usage errors") {
  recon_test::TempDir tmp;
  const std::string bin = RECON_TRAIN_MULTIVIEW_BIN;
  const std::string quiet = " > " + (tmp.path() / "log.txt").string() + " 2>&1";
  CHECK(run_shell(bin + " --help" + quiet) == 0);
  const std::string help = read_text(tmp.path() / "log.txt");
  for (const char* flag : {"--difficulty", "--normalization", "--ssim-weight", "--device", "--weights", "--epochs"})
    CHECK(help.find(flag) != std::string::npos);
  CHECK(run_shell(bin + " --no-such-flag" + quiet) == 2);
  CHECK(run_shell(bin + " --data " + tmp.path().string() + " --difficulty nope" + quiet) == 1);
  CHECK(read_text(tmp.path() / "log.txt").find("unknown difficulty measure") != std::string::npos);
  CHECK(run_shell(bin + " --weights 1,2" + quiet) == 1);
  CHECK(run_shell(bin + " --data " + (tmp.path() / "missing").string() + quiet) == 1);
}

#endif
