// recon_eval and recon_predict on a method 2 checkpoint, end to end:
// train_twostage on a tiny synthetic MVTec-layout set (data/synthetic.hpp),
// with four of its test defects relabelled normal (so that the image AUROC
// is below 1), then recon_eval on the same test set must give the image AUROC (fused,
// x_tilde) and pixel AUROC that train_twostage's run.json reported, the
// stored threshold (a quantile of the calibration normals' fused scores) and
// a report.html; recon_predict on test images must give the same scores as
// recon_eval, decided at that threshold. tests/CMakeLists.txt passes the
// three binaries; without the apps the suite reports as skipped (77).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "models/multiview.hpp"
#include "nn/json.hpp"
#include "app_test_util.hpp"

#if !defined(RECON_TRAIN_TWOSTAGE_BIN) || !defined(RECON_EVAL_BIN) || !defined(RECON_PREDICT_BIN)
TEST_CASE("recon_eval / recon_predict on method 2 (skipped: the apps are not built)") { std::exit(77); }
#else

namespace {

namespace fs = std::filesystem;
using recon::nn::Json;
using recon_test::json_lines;
using recon_test::read_text;
using recon_test::run_app;

}  // namespace

TEST_CASE("recon_eval and recon_predict score a train_twostage checkpoint as train_twostage does") {
  recon_test::TempDir dir;
  // The set of test_train_twostage_e2e: 48 gray 32 x 32 training normals, 12
  // good and 3 x 8 defective test images, with masks.
  const fs::path data = recon_test::write_tex_category(dir.path(), 32, 48, 12, 8, 3), train = dir.path() / "train";
  // Four defective images relabelled normal (moved to test/good, masks
  // dropped): the model ranks them high, so the AUROC is below 1 and its
  // agreement between the apps says something about the scores.
  recon_test::relabel_as_good(data / "tex", {"scratch", "blob"}, 2, "1");
  const fs::path train_log = dir.path() / "train.log";
  int rc = run_app(
      RECON_TRAIN_TWOSTAGE_BIN,
      recon_test::twostage_tiny_args(data, train, "--seed 5 --epochs-rotnet 2 --epochs-decoder 3 --epochs-refiner 2"),
      train_log);
  INFO("train_twostage log:\n" << read_text(train_log));
  REQUIRE(rc == 0);
  const Json run_json = Json::parse(read_text(train / "run.json"));
  const Json& result = run_json.at("classes").as_array().at(0);
  const double train_auroc = result.at("image_auroc").at("x_tilde").at("fused").as_number();
  const double train_pixel = result.at("pixel").at("x_tilde").at("pixel_auroc").as_number();
  REQUIRE_MESSAGE(train_auroc < 0.999, "the relabelled defects should make the image AUROC non-trivial");
  const fs::path ckpt = train / "checkpoint.safetensors";

  // The final checkpoint stores the threshold: the 0.99 quantile of the
  // calibration normals' fused scores, above their median.
  const recon::models::Calibration calib = recon::models::load_calibration(ckpt.string());
  REQUIRE(calib.has_threshold());
  CHECK(calib.threshold_rule == "quantile 0.99");
  CHECK(calib.threshold > calib.score_center);
  CHECK(calib.views.size() == 4);

  // recon_eval on the checkpoint's own data (no data flags): the same test set and numbers.
  const fs::path eval_out = dir.path() / "eval", eval_log = dir.path() / "eval.log";
  rc = run_app(RECON_EVAL_BIN, "--checkpoint '" + ckpt.string() + "' --out '" + eval_out.string() + "'", eval_log);
  INFO("recon_eval log:\n" << read_text(eval_log));
  REQUIRE(rc == 0);
  const Json m = Json::parse(read_text(eval_out / "metrics.json"));
  CHECK(m.at("method").as_string() == "twostage");
  CHECK(m.at("num_test").as_int() == 12 + 3 * 8);
  CHECK(m.at("num_anomalous").as_int() == 3 * 8 - 4);
  const double eval_auroc = m.at("image").at("auroc").as_number();
  MESSAGE("fused AUROC: train_twostage " << train_auroc << ", recon_eval " << eval_auroc);
  CHECK(std::abs(eval_auroc - train_auroc) <= 1e-6);
  REQUIRE(!m.at("pixel").is_null());
  CHECK(std::abs(m.at("pixel").at("auroc").as_number() - train_pixel) <= 1e-6);
  CHECK(m.at("threshold").at("value").as_number() == calib.threshold);
  CHECK(m.at("threshold").at("rule").as_string() == "quantile 0.99");
  const std::string html = read_text(eval_out / "report.html");
  CHECK(html.find("data:image/png;base64,") != std::string::npos);
  CHECK(html.find("twostage") != std::string::npos);

  // recon_predict on a few test images (good and defective): recon_eval's
  // scores, bit for bit (both score one image at a time).
  const auto& scores = m.at("scores").as_array();
  std::vector<size_t> picks = {0, 1, scores.size() / 2, scores.size() - 1};
  std::string inputs;
  for (size_t i : picks) inputs += " --input '" + scores[i].at("source").as_string() + "'";
  const fs::path pred_out = dir.path() / "pred", pred_jsonl = dir.path() / "pred.jsonl",
                 pred_err = dir.path() / "pred.err";
  rc = recon_test::run_shell(std::string("OMP_NUM_THREADS=1 '") + RECON_PREDICT_BIN + "' --checkpoint '" +
                             ckpt.string() + "'" + inputs + " --out '" + pred_out.string() + "' > '" +
                             pred_jsonl.string() + "' 2> '" + pred_err.string() + "'");
  INFO("recon_predict stderr:\n" << read_text(pred_err));
  REQUIRE(rc == 0);
  const std::vector<Json> lines = json_lines(pred_jsonl);
  REQUIRE(lines.size() == picks.size());
  for (size_t k = 0; k < picks.size(); ++k) {
    const Json& l = lines[k];
    const Json& s = scores[picks[k]];
    CAPTURE(s.at("source").as_string());
    CHECK(l.at("path").as_string() == s.at("source").as_string());
    CHECK(l.at("score").as_number() == s.at("score").as_number());
    CHECK(l.at("normalized").as_number() == s.at("normalized").as_number());
    CHECK(l.at("threshold").as_number() == calib.threshold);
    CHECK(l.at("anomalous").as_bool() == (l.at("score").as_number() >= calib.threshold));
    CHECK(fs::exists(l.at("heatmap").as_string()));
    CHECK(fs::exists(l.at("overlay").as_string()));
  }
}

#endif
