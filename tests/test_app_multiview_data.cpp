// train_multiview beyond IDX data (issue 8): --dataset mvtec on a tiny
// synthetic MVTec-layout set trains, writes the dataset into its checkpoint's
// config, and recon_eval on that checkpoint (no data flags) finds the same
// test set and gives the image AUROC train_multiview reported for its stored
// calibration; --dataset piped without --category lists the classes; images
// of mixed sizes kept as stored, or mixing gray and colour files, are refused
// before training (--channels 1 or 3 converts them). The app
// paths come from tests/CMakeLists.txt; without the apps the suite reports as
// skipped (77).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "data/image.hpp"
#include "data/image_io.hpp"
#include "nn/json.hpp"
#include "runtime/generator.hpp"
#include "runtime/tensor.hpp"
#include "app_test_util.hpp"

#if defined(RECON_TRAIN_MULTIVIEW_EXE) && defined(RECON_EVAL_BIN)

namespace {

namespace fs = std::filesystem;
using recon::nn::Json;
using recon_test::read_text;
using recon_test::run_app;

}  // namespace

TEST_CASE("train_multiview --dataset mvtec: trains, and recon_eval scores its checkpoint on the same test set") {
  recon_test::TempDir dir;
  const fs::path data = recon_test::write_tex_category(dir.path(), 32, 48, 12, 6, 4), out = dir.path() / "mv";
  // Two defects relabelled normal: a non-trivial AUROC for the comparison.
  recon_test::relabel_as_good(data / "tex", {"scratch", "blob"}, 1, "9");
  int rc = run_app(RECON_TRAIN_MULTIVIEW_EXE,
                   "--dataset mvtec --data '" + data.string() + "' --category tex --calibration-fraction 0.25 " +
                       "--epochs 4 --width 8 --batch-size 8 --out '" + out.string() + "'",
                   dir.path() / "train.txt");
  INFO(read_text(dir.path() / "train.txt"));
  REQUIRE(rc == 0);
  const Json m = Json::parse(read_text(out / "metrics.json"));
  CHECK(m.at("dataset").as_string() == "mvtec");
  CHECK(m.at("category").as_string() == "tex");
  CHECK(m.find("data_dir") == nullptr);
  CHECK(m.at("num_train").as_int() == 36);
  CHECK(m.at("num_test").as_int() == 12 + 3 * 6);
  CHECK(m.at("image") == Json::array({Json(1), Json(32), Json(32)}));
  const double train_auroc = m.at("ablation").at("entropy").at("residual").at("fused").as_number();
  MESSAGE("train_multiview fused AUROC (entropy, residual) " << train_auroc);
  CHECK(train_auroc > 0.5);
  CHECK(train_auroc < 0.999);

  const fs::path eval_out = dir.path() / "eval";
  rc = run_app(RECON_EVAL_BIN,
               "--checkpoint '" + (out / "checkpoint.safetensors").string() + "' --out '" + eval_out.string() + "'",
               dir.path() / "eval.txt");
  INFO(read_text(dir.path() / "eval.txt"));
  REQUIRE(rc == 0);
  const Json e = Json::parse(read_text(eval_out / "metrics.json"));
  CHECK(e.at("method").as_string() == "multiview");
  CHECK(e.at("num_test").as_int() == 12 + 3 * 6);
  CHECK(e.at("num_anomalous").as_int() == 3 * 6 - 2);
  CHECK(std::abs(e.at("image").at("auroc").as_number() - train_auroc) <= 1e-6);
}

TEST_CASE("train_multiview --dataset piped without --category names the classes") {
  const fs::path root = recon_test::shared_piped_root();
  recon_test::TempDir dir;
  const int rc = run_app(RECON_TRAIN_MULTIVIEW_EXE,
                         "--dataset piped --data '" + root.string() + "' --out '" + (dir.path() / "o").string() + "'",
                         dir.path() / "log.txt");
  const std::string log = read_text(dir.path() / "log.txt");
  CHECK(rc == 1);
  CHECK_MESSAGE(log.find("--dataset piped needs --category") != std::string::npos, log);
  CHECK_MESSAGE(log.find("PA_BDP01_TL") != std::string::npos, log);
  CHECK_MESSAGE(log.find("PU_PNG01_TL") == std::string::npos, log);  // normal images only: not a class
}

TEST_CASE("train_multiview: images of mixed sizes kept as stored are refused before training, naming one") {
  recon_test::TempDir dir;
  recon::Generator gen(5);
  // 32 x 32 noise, but one anomaly 31 wide (test set only, where it used to
  // stop the run after training, when the test set was scored).
  for (int i = 0; i < 16; ++i)
    recon_test::write_noise_image(dir / "normal" / ("n" + std::to_string(i) + ".png"), 32, 32, gen);
  for (int i = 0; i < 4; ++i)
    recon_test::write_noise_image(dir / "abnormal" / ("a" + std::to_string(i) + ".png"), 32, 32, gen);
  recon_test::write_noise_image(dir / "abnormal" / "odd.png", 32, 31, gen);
  const std::string base = "--dataset folder --normal-dir '" + (dir / "normal").string() + "' --abnormal-dir '" +
                           (dir / "abnormal").string() +
                           "' --calibration-fraction 0.25 --epochs 2 --width 8 --batch-size 4 ";
  const fs::path mixed = dir / "mixed";
  const recon_test::AppResult r =
      recon_test::run_app_output(RECON_TRAIN_MULTIVIEW_EXE, base + "--out '" + mixed.string() + "'", dir / "mixed.log");
  CHECK(r.status == 1);
  CHECK_MESSAGE(r.output.find("odd.png is 31x32 (width x height) but 20 of the 21 training, calibration and test "
                              "images are 32x32") != std::string::npos,
                r.output);
  CHECK_MESSAGE(r.output.find("pass --image-size S") != std::string::npos, r.output);
  // Refused before training: no epoch ran, nothing was written.
  CHECK_MESSAGE(r.output.find("epoch 1/") == std::string::npos, r.output);
  CHECK_FALSE(fs::exists(mixed / "checkpoint.safetensors"));

  // Resized to one size, the same set trains and scores every test image.
  const fs::path resized = dir / "resized";
  const recon_test::AppResult ok = recon_test::run_app_output(
      RECON_TRAIN_MULTIVIEW_EXE, base + "--image-size 32 --out '" + resized.string() + "'", dir / "resized.log");
  REQUIRE_MESSAGE(ok.status == 0, ok.output);
  const Json m = Json::parse(read_text(resized / "metrics.json"));
  CHECK(m.at("num_test").as_int() == 8 + 5);
}

TEST_CASE("train_multiview: a gray file among colour ones is refused before training; --channels 3 trains") {
  recon_test::TempDir dir;
  recon::Generator gen(6);
  // RGB noise, but one anomaly stored gray (test set only: it used to stop
  // the run after training, when a test batch mixed it with colour images).
  for (int i = 0; i < 16; ++i)
    recon_test::write_noise_image(dir / "normal" / ("n" + std::to_string(i) + ".png"), 32, 32, gen, 3);
  for (int i = 0; i < 4; ++i)
    recon_test::write_noise_image(dir / "abnormal" / ("a" + std::to_string(i) + ".png"), 32, 32, gen, 3);
  recon_test::write_noise_image(dir / "abnormal" / "gray.png", 32, 32, gen, 1);
  const std::string base = "--dataset folder --normal-dir '" + (dir / "normal").string() + "' --abnormal-dir '" +
                           (dir / "abnormal").string() +
                           "' --calibration-fraction 0.25 --epochs 2 --width 8 --batch-size 4 ";
  // Kept as stored, and resized (resizing keeps the channels): refused, naming the file.
  for (const std::string extra : {"", "--image-size 16 "}) {
    const fs::path out = dir / "mixed";
    const recon_test::AppResult r =
        recon_test::run_app_output(RECON_TRAIN_MULTIVIEW_EXE, base + extra + "--out '" + out.string() + "'",
                                   dir / "mixed.log");
    INFO(extra);
    CHECK(r.status == 1);
    CHECK_MESSAGE(r.output.find("gray.png has 1 channel (gray) but 20 of the 21 training, calibration and test "
                                "images have 3 channels (colour)") != std::string::npos,
                  r.output);
    CHECK_MESSAGE(r.output.find("pass --channels 1") != std::string::npos, r.output);
    CHECK_MESSAGE(r.output.find("--channels 3") != std::string::npos, r.output);
    CHECK_MESSAGE(r.output.find("epoch 1/") == std::string::npos, r.output);
    CHECK_FALSE(fs::exists(out / "checkpoint.safetensors"));
  }

  // Converted to RGB, the same set trains and scores every test image; the
  // checkpoint records --channels and recon_eval reads the set the same way.
  const fs::path rgb = dir / "rgb";
  const recon_test::AppResult ok = recon_test::run_app_output(
      RECON_TRAIN_MULTIVIEW_EXE, base + "--channels 3 --out '" + rgb.string() + "'", dir / "rgb.log");
  REQUIRE_MESSAGE(ok.status == 0, ok.output);
  const Json m = Json::parse(read_text(rgb / "metrics.json"));
  CHECK(m.at("num_test").as_int() == 8 + 5);
  CHECK(m.at("channels").as_int() == 3);
  CHECK(m.at("image") == Json::array({Json(3), Json(32), Json(32)}));
  const fs::path eval_out = dir / "eval";
  const recon_test::AppResult ev = recon_test::run_app_output(
      RECON_EVAL_BIN,
      "--checkpoint '" + (rgb / "checkpoint.safetensors").string() + "' --out '" + eval_out.string() + "'",
      dir / "eval.log");
  REQUIRE_MESSAGE(ev.status == 0, ev.output);
  CHECK(Json::parse(read_text(eval_out / "metrics.json")).at("num_test").as_int() == 8 + 5);

  // --channels 1 converts to gray instead.
  const fs::path gray = dir / "gray";
  const recon_test::AppResult g = recon_test::run_app_output(
      RECON_TRAIN_MULTIVIEW_EXE, base + "--channels 1 --out '" + gray.string() + "'", dir / "gray.log");
  REQUIRE_MESSAGE(g.status == 0, g.output);
  CHECK(Json::parse(read_text(gray / "metrics.json")).at("image") == Json::array({Json(1), Json(32), Json(32)}));
}

TEST_CASE("train_multiview: --channels 3 on an IDX set, or --channels 2, is refused before loading") {
  recon_test::TempDir dir;
  const recon_test::AppResult r = recon_test::run_app_output(
      RECON_TRAIN_MULTIVIEW_EXE, "--dataset fashion-mnist --channels 3 --out '" + (dir / "o").string() + "'",
      dir / "idx.log");
  CHECK(r.status == 1);
  CHECK_MESSAGE(r.output.find("--channels 3: --dataset fashion-mnist holds gray images") != std::string::npos,
                r.output);
  const recon_test::AppResult bad = recon_test::run_app_output(
      RECON_TRAIN_MULTIVIEW_EXE, "--dataset fashion-mnist --channels 2 --out '" + (dir / "o").string() + "'",
      dir / "bad.log");
  CHECK(bad.status == 1);
  CHECK_MESSAGE(bad.output.find("--channels must be 0 (as stored), 1 (gray) or 3 (RGB), got 2") != std::string::npos,
                bad.output);
}

TEST_CASE("train_multiview --dataset piped on PA_BTN01_RL (one 127 x 128 image) stops before training") {
  const fs::path root = recon_test::shared_piped_root();
  recon_test::TempDir dir;
  const recon_test::AppResult r = recon_test::run_app_output(
      RECON_TRAIN_MULTIVIEW_EXE,
      "--dataset piped --data '" + root.string() + "' --category PA_BTN01_RL --out '" + (dir / "o").string() + "'",
      dir / "log.txt");
  CHECK(r.status == 1);
  CHECK_MESSAGE(
      r.output.find("PA_BTN01_RL_S_D_07_2.bmp is 127x128 (width x height) but 95 of the 96") != std::string::npos,
      r.output);
  CHECK_MESSAGE(r.output.find("epoch 1/") == std::string::npos, r.output);
}

#else

TEST_CASE("train_multiview on non-IDX data: skipped (the apps are not built)") { std::exit(77); }

#endif
