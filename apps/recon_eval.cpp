// recon_eval: evaluates a trained checkpoint of either method (recognised by
// its config, eval/detector) on a test set: image AUROC, AUPRC, F1-max and
// the decision at the checkpoint's stored threshold; pixel AUROC and AUPRO
// where the test set has masks. Writes metrics.json (every number and every
// image's score) and report.html (ROC and PR curves, score histograms and the
// best and worst cases as image, reconstruction, heat-map overlay and mask,
// self-contained) with the case PNGs under cases/. Tile mode (--tile) scores
// overlapping windows at native resolution and stitches their maps.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numeric>

#include "apps/anomaly_data.hpp"
#include "apps/cli.hpp"
#include "data/folder.hpp"
#include "data/image_io.hpp"
#include "data/transforms.hpp"
#include "eval/detector.hpp"
#include "eval/metrics.hpp"
#include "eval/report.hpp"
#include "nn/json.hpp"
#include "runtime/error.hpp"

using namespace recon;
namespace fs = std::filesystem;

namespace {

struct Config {
  std::string checkpoint;
  apps::DataSpec data;
  int normal_class = -1;          // -1: the checkpoint's
  double calibration_fraction = -1;  // -1: the checkpoint's (or 0.1)
  double test_fraction = -1;         // -1: the checkpoint's (or 0.5)
  std::string seed;                  // empty: the checkpoint's (or 0)
  std::string out = "runs/recon_eval";
  // 1: every image goes through the model alone, so its score does not depend on
  // what else is in the batch (bitwise the same in recon_eval and recon_predict).
  int batch_size = 1;
  std::string device = "cpu";
  int tile = -1, stride = 0;  // tile -1: the checkpoint's train_tile (0 when it has none)
  int cases = 3;
  double map_max = 8;
  int max_images = 0;
};

double number_or(const nn::Json& cfg, const char* key, double def) {
  const nn::Json* v = cfg.is_object() ? cfg.find(key) : nullptr;
  return v && v->is_number() ? v->as_number() : def;
}
std::string string_or(const nn::Json& cfg, const char* key, const std::string& def) {
  const nn::Json* v = cfg.is_object() ? cfg.find(key) : nullptr;
  return v && v->is_string() ? v->as_string() : def;
}

// The test set: the flags, else the data the checkpoint was trained on.
data::AnomalySplit load_test_split(Config& cfg, const nn::Json& ck, std::string& description, bool& has_masks) {
  apps::DataSpec& s = cfg.data;
  if (s.kind.empty()) {  // the checkpoint's data
    if (ck.find("data_dir")) {  // train_multiview: IDX
      const std::string dir = ck.at("data_dir").as_string();
      s.kind = dir == data::kFashionMnistDir ? "fashion-mnist" : "idx";
      if (s.path.empty()) s.path = dir;
    } else {
      s.kind = string_or(ck, "dataset", "fashion-mnist");
      if (s.path.empty()) s.path = string_or(ck, "data", "");
      if (s.category.empty()) s.category = string_or(ck, "category", "");
      if (s.normal_dir.empty()) s.normal_dir = string_or(ck, "normal_dir", "");
      if (s.abnormal_dir.empty()) s.abnormal_dir = string_or(ck, "abnormal_dir", "");
      if (s.mask_dir.empty()) s.mask_dir = string_or(ck, "mask_dir", "");
    }
  }
  if (cfg.normal_class < 0) cfg.normal_class = (int)number_or(ck, "normal_class", 0);
  s.calibration_fraction = cfg.calibration_fraction >= 0 ? cfg.calibration_fraction
                                                         : number_or(ck, "calibration_fraction", 0.1);
  s.test_fraction = cfg.test_fraction >= 0 ? cfg.test_fraction : number_or(ck, "test_fraction", 0.5);
  const uint64_t seed = !cfg.seed.empty() ? std::stoull(cfg.seed) : (uint64_t)number_or(ck, "seed", 0);
  s.image_size = 0;  // the detector fits each image to the model
  // Files read as training read them (--channels), so that a converted image
  // is the same float for float; 0 (older checkpoints, IDX): as stored, and
  // the detector converts.
  s.channels = (int)number_or(ck, "channels", 0);
  RECON_CHECK(s.channels == 0 || s.channels == 1 || s.channels == 3,
              cfg.checkpoint << ": the config has a bad \"channels\" (" << s.channels << "): expected 0, 1 or 3");
  if (apps::is_idx_kind(s)) s.channels = 0;  // gray by construction
  if (s.kind == "piped") {
    RECON_CHECK(!s.path.empty() && !s.category.empty(),
                "--dataset piped needs --data <PIPED root> and --category <class>");
    data::AnomalySplit split = data::holdout_split(data::load_piped_class(s.path, s.category, s.channels),
                                                   s.test_fraction, s.calibration_fraction, seed);
    description = "piped " + s.path + ", class " + s.category;
    has_masks = split.test->has_masks();
    return split;
  }
  const std::string cls = apps::is_idx_kind(s) ? std::to_string(cfg.normal_class) : "";
  apps::AnomalyData d = apps::load_anomaly_data(s, cls, seed);
  description = d.description;
  has_masks = d.has_masks;
  return d.split;
}

struct Row {
  std::string source;
  int label = 0;
  double score = 0;
};

int run(Config cfg) {
  RECON_CHECK(!cfg.checkpoint.empty(), "--checkpoint is required");
  RECON_CHECK(cfg.batch_size > 0 && cfg.cases >= 0 && cfg.map_max > 0,
              "--batch-size and --map-max must be positive, --cases >= 0");
  const Device device = parse_device(cfg.device == "auto" ? "cpu" : cfg.device);
  auto det = eval::load_detector(cfg.checkpoint, device);
  const models::Calibration& calib = det->calibration();
  std::printf("recon_eval: %s, method %s (recognised by %s), model input %dx%dx%d\n", cfg.checkpoint.c_str(),
              det->method().c_str(), det->detected_by.c_str(), det->channels(), det->height(), det->width());
  if (cfg.tile < 0) cfg.tile = eval::trained_tile(*det);
  std::string description;
  bool has_masks = false;
  const data::AnomalySplit split = load_test_split(cfg, det->config(), description, has_masks);
  const data::DatasetPtr& test = split.test;
  size_t n = test->size();
  if (cfg.max_images > 0) n = std::min(n, (size_t)cfg.max_images);
  std::printf("  test set: %s, %zu images%s%s\n", description.c_str(), n, has_masks ? ", with masks" : "",
              cfg.tile > 0 ? (", tile " + std::to_string(cfg.tile)).c_str() : "");

  eval::ScoreOptions so;
  so.tile = cfg.tile;
  so.stride = cfg.stride;
  so.batch_size = cfg.batch_size;
  std::vector<Row> rows(n);
  std::vector<data::Image> maps, masks;  // only with masks
  apps::Progress bar("scoring", (int64_t)n);
  for (size_t b = 0; b < n; b += (size_t)cfg.batch_size) {
    const size_t e = std::min(n, b + (size_t)cfg.batch_size);
    std::vector<data::Image> images;
    std::vector<data::Sample> samples;
    for (size_t i = b; i < e; ++i) {
      samples.push_back(test->get(i));
      images.push_back(samples.back().image);
    }
    std::vector<eval::ImageScore> r = eval::score_images(*det, images, so);
    for (size_t i = b; i < e; ++i) {
      rows[i] = {test->source(i), test->label(i) != 0 ? 1 : 0, r[i - b].fused};
      if (has_masks) {
        data::Image& mk = samples[i - b].mask;
        if (!mk.same_size(r[i - b].map)) mk = data::resize(mk, r[i - b].map.height, r[i - b].map.width,
                                                             data::ResizeMode::Nearest);
        masks.push_back(std::move(mk));
        maps.push_back(std::move(r[i - b].map));
      }
    }
    bar.update((int64_t)e, "");
  }
  bar.finish();

  std::vector<float> scores;
  std::vector<int> labels;
  for (const Row& r : rows) {
    scores.push_back((float)r.score);
    labels.push_back(r.label);
  }
  const int64_t n_anom = std::count(labels.begin(), labels.end(), 1);
  RECON_CHECK(n_anom > 0 && n_anom < (int64_t)n,
              "recon_eval: the test set needs normal and anomalous images (" << n - n_anom << " normal, " << n_anom
                                                                             << " anomalous)");
  const double roc = eval::auroc(scores, labels), ap = eval::auprc(scores, labels);
  const eval::F1Max f1 = eval::f1_max(scores, labels);

  nn::Json m = nn::Json::object();
  m.set("app", nn::Json("recon_eval"));
  m.set("checkpoint", nn::Json(cfg.checkpoint));
  m.set("method", nn::Json(det->method()));
  m.set("method_detected_by", nn::Json(det->detected_by));
  m.set("dataset", nn::Json(description));
  m.set("tile", nn::Json(cfg.tile));
  m.set("stride", nn::Json(cfg.tile > 0 ? (cfg.stride > 0 ? cfg.stride : std::max(1, cfg.tile / 2)) : 0));
  m.set("num_test", nn::Json((int64_t)n));
  m.set("num_anomalous", nn::Json(n_anom));
  nn::Json im = nn::Json::object();
  im.set("auroc", nn::Json(roc));
  im.set("auprc", nn::Json(ap));
  im.set("f1_max", nn::Json(f1.f1));
  im.set("f1_max_threshold", nn::Json((double)f1.threshold));
  im.set("f1_max_precision", nn::Json(f1.precision));
  im.set("f1_max_recall", nn::Json(f1.recall));
  m.set("image", std::move(im));
  std::printf("  image AUROC %.4f, AUPRC %.4f, F1-max %.4f (threshold %.4g)\n", roc, ap, f1.f1, f1.threshold);
  if (calib.has_threshold()) {
    int64_t tp = 0, fp = 0;
    for (size_t i = 0; i < n; ++i)
      if (rows[i].score >= calib.threshold) (labels[i] ? tp : fp) += 1;
    const int64_t tn = (int64_t)n - n_anom - fp;
    nn::Json t = nn::Json::object();
    t.set("value", nn::Json(calib.threshold));
    t.set("rule", nn::Json(calib.threshold_rule));
    t.set("score_center", nn::Json(calib.score_center));
    t.set("precision", nn::Json(tp + fp > 0 ? (double)tp / (double)(tp + fp) : 0.0));
    t.set("recall", nn::Json((double)tp / (double)n_anom));
    t.set("false_positive_rate", nn::Json((double)fp / (double)(n - n_anom)));
    t.set("accuracy", nn::Json((double)(tp + tn) / (double)n));
    std::printf("  at the stored threshold %.4g (%s): recall %.4f, false-positive rate %.4f\n", calib.threshold,
                calib.threshold_rule.c_str(), (double)tp / (double)n_anom, (double)fp / (double)(n - n_anom));
    m.set("threshold", std::move(t));
  } else {
    m.set("threshold", nn::Json());
  }
  // Pixel metrics over the pooled maps. Maps (and masks) of a size other
  // than the first test image's (tile mode keeps native sizes; PIPED has one
  // 128x127 image) are resized to it, the map bilinearly and the mask by
  // nearest neighbour, as train_twostage does, and counted in resized_maps.
  nn::Json px;
  std::string pixel_note;
  int resized = 0;
  if (has_masks && !maps.empty()) {
    for (size_t i = 1; i < maps.size(); ++i) {
      if (maps[i].same_size(maps.front())) continue;
      maps[i] = data::resize(maps[i], maps.front().height, maps.front().width, data::ResizeMode::Bilinear);
      masks[i] = data::resize(masks[i], maps.front().height, maps.front().width, data::ResizeMode::Nearest);
      ++resized;
    }
    {
      const Tensor mt = eval::stack_images(maps), kt = eval::stack_images(masks);
      double mask_sum = 0;
      for (const data::Image& mk : masks) mask_sum += std::accumulate(mk.pixels.begin(), mk.pixels.end(), 0.0);
      if (mask_sum > 0) {
        px = nn::Json::object();
        px.set("auroc", nn::Json(eval::pixel_auroc(mt, kt)));
        px.set("aupro", nn::Json(eval::aupro(mt, kt)));
        std::printf("  pixel AUROC %.4f, AUPRO(0.3) %.4f\n", px.at("auroc").as_number(), px.at("aupro").as_number());
        if (resized > 0) {
          px.set("resized_maps", nn::Json(resized));
          std::printf("  (%d test image(s) of another size: maps resized to %dx%d for the pixel metrics)\n", resized,
                      maps.front().height, maps.front().width);
        }
      } else {
        pixel_note = "the masks mark no anomalous pixel";
      }
    }
  } else {
    pixel_note = "the test set has no masks";
  }
  m.set("pixel", px);
  if (!pixel_note.empty()) m.set("pixel_note", nn::Json(pixel_note));

  nn::Json per = nn::Json::array();
  for (const Row& r : rows) {
    nn::Json j = nn::Json::object();
    j.set("source", nn::Json(r.source));
    j.set("label", nn::Json(r.label));
    j.set("score", nn::Json(r.score));
    if (calib.has_threshold()) j.set("normalized", nn::Json(models::normalized_score(calib, r.score)));
    per.push_back(std::move(j));
  }
  m.set("scores", std::move(per));
  fs::create_directories(fs::path(cfg.out) / "cases");
  {
    std::ofstream f(fs::path(cfg.out) / "metrics.json");
    f << m.dump(2) << "\n";
    RECON_CHECK(f.good(), "recon_eval: could not write " << (fs::path(cfg.out) / "metrics.json").string());
  }

  // ---- the report: best and worst cases -------------------------------------------
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return rows[a].score > rows[b].score; });
  std::vector<size_t> anomalies, normals;  // by decreasing score
  for (size_t i : order) (rows[i].label ? anomalies : normals).push_back(i);
  auto first_k = [&](const std::vector<size_t>& v, bool from_top) {
    std::vector<size_t> o;
    for (int k = 0; k < cfg.cases && k < (int)v.size(); ++k) o.push_back(from_top ? v[k] : v[v.size() - 1 - k]);
    return o;
  };
  const std::vector<std::pair<std::string, std::vector<size_t>>> groups = {
      {"anomalies with the highest scores (found)", first_k(anomalies, true)},
      {"anomalies with the lowest scores (hardest to find)", first_k(anomalies, false)},
      {"normals with the highest scores (false alarms)", first_k(normals, true)},
      {"normals with the lowest scores (clean)", first_k(normals, false)}};
  eval::ReportInput rep;
  rep.title = "ReconAD evaluation: " + det->method() + " on " + description;
  rep.summary = {{"checkpoint", cfg.checkpoint},
                 {"method", det->method() + " (recognised by " + det->detected_by + ")"},
                 {"test images", std::to_string(n) + " (" + std::to_string(n_anom) + " anomalous)"},
                 {"image AUROC", std::to_string(roc)},
                 {"image AUPRC", std::to_string(ap)},
                 {"F1-max", std::to_string(f1.f1) + " at score >= " + std::to_string(f1.threshold)}};
  if (calib.has_threshold())
    rep.summary.push_back({"stored threshold", std::to_string(calib.threshold) + " (" + calib.threshold_rule + ")"});
  rep.summary.push_back({"pixel AUROC / AUPRO", px.is_null() ? "n/a (" + pixel_note + ")"
                                                             : std::to_string(px.at("auroc").as_number()) + " / " +
                                                                   std::to_string(px.at("aupro").as_number())});
  if (cfg.tile > 0) rep.summary.push_back({"tile mode", "tile " + std::to_string(cfg.tile)});
  rep.scores = scores;
  rep.labels = labels;
  rep.threshold = calib.has_threshold() ? calib.threshold : NAN;
  int gi = 0;
  for (const auto& [title, idx] : groups) {
    eval::ReportGroup g;
    g.title = title;
    std::vector<data::Image> images;
    std::vector<data::Sample> samples;
    for (size_t i : idx) {
      samples.push_back(test->get(i));
      images.push_back(samples.back().image);
    }
    const std::vector<eval::ImageScore> r = eval::score_images(*det, images, so);
    for (size_t k = 0; k < idx.size(); ++k) {
      const fs::path stem = fs::path(cfg.out) / "cases" / ("g" + std::to_string(gi) + "_" + std::to_string(k));
      eval::ReportCase c;
      char cap[96];
      std::snprintf(cap, sizeof cap, "score %.4g, label %d: ", r[k].fused, rows[idx[k]].label);
      c.caption = cap + rows[idx[k]].source;
      auto add = [&](const std::string& label, const data::Image& img) {
        const fs::path p = stem.string() + "_" + label + ".png";
        data::write_png(p, img);
        c.pngs.push_back({label, p});
      };
      add("image", r[k].input);
      add("recon", r[k].recon);
      add("overlay", eval::overlay(r[k].input, r[k].map, cfg.map_max));
      if (has_masks) {
        data::Image mk = samples[k].mask;
        if (!mk.same_size(r[k].map)) mk = data::resize(mk, r[k].map.height, r[k].map.width, data::ResizeMode::Nearest);
        add("mask", mk);
      }
      g.cases.push_back(std::move(c));
    }
    rep.groups.push_back(std::move(g));
    ++gi;
  }
  const fs::path report = fs::path(cfg.out) / "report.html";
  {
    std::ofstream f(report);
    f << eval::render_report(rep);
    RECON_CHECK(f.good(), "recon_eval: could not write " << report.string());
  }
  std::printf("  wrote %s and %s\n", (fs::path(cfg.out) / "metrics.json").string().c_str(), report.string().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  cfg.data.kind = "";
  apps::Cli cli("recon_eval",
                "Evaluates a checkpoint of train_multiview (method 1) or train_twostage (method 2) on a test set: "
                "image AUROC, AUPRC, F1-max, the stored threshold's decisions, pixel AUROC and AUPRO where masks "
                "exist; writes metrics.json and a self-contained report.html (curves, histograms, best and worst cases).");
  cli.add("--checkpoint", cfg.checkpoint, "the checkpoint (checkpoint.safetensors of a training app)");
  cli.add("--dataset", cfg.data.kind,
          "fashion-mnist, idx, mvtec, folder or piped; empty: the data the checkpoint was trained on");
  cli.add("--data", cfg.data.path, "IDX folder, MVTec root or PIPED root");
  cli.add("--normal-class", cfg.normal_class, "IDX: the normal class (-1: the checkpoint's)");
  cli.add("--category", cfg.data.category, "MVTec category or PIPED class");
  cli.add("--normal-dir", cfg.data.normal_dir, "folder layout: normal images");
  cli.add("--abnormal-dir", cfg.data.abnormal_dir, "folder layout: anomalous images");
  cli.add("--mask-dir", cfg.data.mask_dir, "folder layout: masks of the anomalous images");
  cli.add("--calibration-fraction", cfg.calibration_fraction,
          "held-out normal fraction of the split (-1: the checkpoint's; must match it for folder/PIPED test sets)");
  cli.add("--test-fraction", cfg.test_fraction, "folder/PIPED: normals in the test set (-1: the checkpoint's or 0.5)");
  cli.add("--seed", cfg.seed, "split seed (empty: the checkpoint's)");
  cli.add("--out", cfg.out, "output folder (metrics.json, report.html, cases/)");
  apps::add_scoring_flags(cli, cfg.batch_size, cfg.device, cfg.tile, cfg.stride, cfg.map_max);
  cli.add("--cases", cfg.cases, "cases per gallery row of the report");
  cli.add("--max-images", cfg.max_images, "score only the first N test images (0: all)");
  cli.parse(argc, argv);
  try {
    return run(cfg);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "recon_eval: error: %s\n", e.what());
    return 1;
  }
}
