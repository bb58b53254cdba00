// recon_predict: scores image files (or every image in folders) with a trained
// checkpoint, through the same code as recon_eval (eval/detector), so both
// give the same score for the same image. Prints one JSON line per image:
// path, raw score, normalised score (0 a typical normal, 1 the threshold) and
// the decision at the checkpoint's calibrated threshold; writes the heat map
// and the overlay of each image as PNGs to --out. Tile mode (--tile) scores
// overlapping windows at native resolution and stitches their maps.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>

#include "apps/cli.hpp"
#include "data/image_io.hpp"
#include "eval/detector.hpp"
#include "eval/report.hpp"
#include "models/multiview.hpp"
#include "nn/json.hpp"
#include "runtime/error.hpp"

using namespace recon;
namespace fs = std::filesystem;

namespace {

struct Config {
  std::string checkpoint;
  std::vector<std::string> inputs;
  std::string out = "runs/recon_predict";
  // 1: every image goes through the model alone, so its score does not depend on
  // what else is in the batch (bitwise the same in recon_eval and recon_predict).
  int batch_size = 1;
  std::string device = "cpu";
  int tile = -1, stride = 0;  // tile -1: the checkpoint's train_tile (0 when it has none)
  double map_max = 8;
  std::string threshold;  // empty: the checkpoint's
  bool no_images = false;
};

int run(const Config& cfg) {
  RECON_CHECK(!cfg.checkpoint.empty(), "--checkpoint is required");
  RECON_CHECK(!cfg.inputs.empty(), "give at least one --input (an image file or a folder of images)");
  RECON_CHECK(cfg.batch_size > 0 && cfg.map_max > 0, "--batch-size and --map-max must be positive");
  auto det = eval::load_detector(cfg.checkpoint, parse_device(cfg.device));
  models::Calibration calib = det->calibration();
  if (!cfg.threshold.empty()) {
    calib.threshold = std::stod(cfg.threshold);
    calib.threshold_rule = "--threshold";
  }
  RECON_CHECK(calib.has_threshold(), cfg.checkpoint << " stores no decision threshold (train it with a newer "
                                                       "training app) and no --threshold was given");
  // Files read as training read them (its --channels), so that a converted
  // image is the same as recon_eval's; 0 (older checkpoints): as stored, and
  // the detector converts.
  const nn::Json* channels_json = det->config().is_object() ? det->config().find("channels") : nullptr;
  const int channels = channels_json && channels_json->is_number() ? (int)channels_json->as_int() : 0;
  RECON_CHECK(channels == 0 || channels == 1 || channels == 3,
              cfg.checkpoint << ": the config has a bad \"channels\" (" << channels << "): expected 0, 1 or 3");
  std::vector<fs::path> files;
  for (const std::string& in : cfg.inputs) {
    RECON_CHECK(fs::exists(in), "--input " << in << ": no such file or folder");
    if (fs::is_directory(in)) {
      const auto list = data::list_images(in);
      RECON_CHECK(!list.empty(), "--input " << in << ": the folder holds no images");
      files.insert(files.end(), list.begin(), list.end());
    } else {
      files.push_back(in);
    }
  }
  if (!cfg.no_images) fs::create_directories(cfg.out);
  eval::ScoreOptions so;
  so.tile = cfg.tile < 0 ? eval::trained_tile(*det) : cfg.tile;
  so.stride = cfg.stride;
  so.batch_size = cfg.batch_size;
  std::map<std::string, int> stems;  // output names made unique
  int64_t anomalous = 0;
  for (size_t b = 0; b < files.size(); b += (size_t)cfg.batch_size) {
    const size_t e = std::min(files.size(), b + (size_t)cfg.batch_size);
    std::vector<data::Image> images;
    for (size_t i = b; i < e; ++i) images.push_back(data::read_image(files[i], channels));
    const std::vector<eval::ImageScore> r = eval::score_images(*det, images, so);
    for (size_t i = b; i < e; ++i) {
      const eval::ImageScore& s = r[i - b];
      const bool anomaly = s.fused >= calib.threshold;
      anomalous += anomaly;
      nn::Json j = nn::Json::object();
      j.set("path", nn::Json(files[i].string()));
      j.set("score", nn::Json(s.fused));
      j.set("normalized", nn::Json(models::normalized_score(calib, s.fused)));
      j.set("threshold", nn::Json(calib.threshold));
      j.set("anomalous", nn::Json(anomaly));
      if (so.tile > 0) j.set("windows", nn::Json(s.windows));
      if (!cfg.no_images) {
        std::string stem = files[i].stem().string();
        if (const int k = stems[stem]++; k > 0) stem += "_" + std::to_string(k);
        const fs::path heat = fs::path(cfg.out) / (stem + "_heatmap.png");
        const fs::path over = fs::path(cfg.out) / (stem + "_overlay.png");
        data::write_png(heat, eval::heat_map(s.map, cfg.map_max));
        data::write_png(over, eval::overlay(s.input, s.map, cfg.map_max));
        j.set("heatmap", nn::Json(heat.string()));
        j.set("overlay", nn::Json(over.string()));
      }
      std::printf("%s\n", j.dump().c_str());
    }
    std::fflush(stdout);
  }
  std::fprintf(stderr, "recon_predict: %zu images, %lld above the threshold %.6g (%s)\n", files.size(),
               (long long)anomalous, calib.threshold, calib.threshold_rule.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  // --input may repeat: collected here, the rest goes to the flag parser.
  std::vector<char*> rest = {argv[0]};
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--input") == 0 && i + 1 < argc) {
      cfg.inputs.push_back(argv[++i]);
    } else if (std::strncmp(argv[i], "--input=", 8) == 0) {
      cfg.inputs.push_back(argv[i] + 8);
    } else {
      rest.push_back(argv[i]);
    }
  }
  std::string input_help;
  apps::Cli cli("recon_predict",
                "Scores image files or folders with a checkpoint of train_multiview or train_twostage: one JSON "
                "line per image (path, score, normalised score, decision at the calibrated threshold) on stdout, "
                "heat-map and overlay PNGs in --out.");
  cli.add("--input", input_help, "an image file or a folder of images; may repeat");
  cli.add("--checkpoint", cfg.checkpoint, "the checkpoint (checkpoint.safetensors of a training app)");
  cli.add("--out", cfg.out, "folder for <name>_heatmap.png and <name>_overlay.png");
  apps::add_scoring_flags(cli, cfg.batch_size, cfg.device, cfg.tile, cfg.stride, cfg.map_max);
  cli.add("--threshold", cfg.threshold, "decision threshold on the score (empty: the checkpoint's calibrated one)");
  cli.add_switch("--no-images", cfg.no_images, "print the scores only, write no PNGs");
  cli.parse((int)rest.size(), rest.data());
  try {
    return run(cfg);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "recon_predict: error: %s\n", e.what());
    return 1;
  }
}
