// train_multiview beyond IDX data (issue 8): --dataset mvtec on a tiny
// synthetic MVTec-layout set trains, writes the dataset into its checkpoint's
// config, and recon_eval on that checkpoint (no data flags) finds the same
// test set and gives the image AUROC train_multiview reported for its stored
// calibration; --dataset piped without --category lists the classes. The app
// paths come from tests/CMakeLists.txt; without the apps the suite reports as
// skipped (77).
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "data/synthetic.hpp"
#include "nn/json.hpp"
#include "test_data_util.hpp"

#if defined(RECON_TRAIN_MULTIVIEW_EXE) && defined(RECON_EVAL_BIN)

namespace {

namespace fs = std::filesystem;
using recon::nn::Json;

int run(const std::string& exe, const std::string& args, const fs::path& log) {
  const std::string cmd = "OMP_NUM_THREADS=1 '" + exe + "' " + args + " > '" + log.string() + "' 2>&1";
  const int rc = std::system(cmd.c_str());
  REQUIRE_MESSAGE(WIFEXITED(rc), "did not exit normally: " << cmd);
  return WEXITSTATUS(rc);
}

std::string read_text(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

TEST_CASE("train_multiview --dataset mvtec: trains, and recon_eval scores its checkpoint on the same test set") {
  recon_test::TempDir dir;
  recon::data::SyntheticOptions so;
  so.size = 32;
  so.channels = 1;
  so.train_count = 48;
  so.test_good_count = 12;
  so.test_defect_count = 6;
  so.seed = 4;
  const fs::path data = dir.path() / "data", out = dir.path() / "mv";
  recon::data::write_synthetic_mvtec(data, "tex", so);
  // Two defects relabelled normal: a non-trivial AUROC for the comparison.
  for (const char* defect : {"scratch", "blob"}) {
    fs::rename(data / "tex" / "test" / defect / "000.png",
               data / "tex" / "test" / "good" / (std::string("9_") + defect + ".png"));
    fs::remove(data / "tex" / "ground_truth" / defect / "000_mask.png");
  }
  int rc = run(RECON_TRAIN_MULTIVIEW_EXE,
               "--dataset mvtec --data '" + data.string() + "' --category tex --calibration-fraction 0.25 --epochs 4 "
               "--width 8 --batch-size 8 --out '" + out.string() + "'",
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
  rc = run(RECON_EVAL_BIN,
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
  const fs::path root = fs::path(RECON_SOURCE_DIR) / ".." / "shared" / "data" / "piped";
  REQUIRE_MESSAGE(fs::is_directory(root), root.string() << " is missing (the shared PIPED copy)");
  recon_test::TempDir dir;
  const int rc = run(RECON_TRAIN_MULTIVIEW_EXE,
                     "--dataset piped --data '" + root.string() + "' --out '" + (dir.path() / "o").string() + "'",
                     dir.path() / "log.txt");
  const std::string log = read_text(dir.path() / "log.txt");
  CHECK(rc == 1);
  CHECK_MESSAGE(log.find("--dataset piped needs --category") != std::string::npos, log);
  CHECK_MESSAGE(log.find("PA_BDP01_TL") != std::string::npos, log);
  CHECK_MESSAGE(log.find("PU_PNG01_TL") == std::string::npos, log);  // normal images only: not a class
}

#else

TEST_CASE("train_multiview on non-IDX data: skipped (the apps are not built)") { std::exit(77); }

#endif
