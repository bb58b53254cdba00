// The report pieces (base64, heat map, overlay, SVG plots, the whole page),
// tile mode's offsets and stitcher, the stored decision threshold of the
// multi-view calibration, and which method a checkpoint holds.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <limits>

#include "data/image_io.hpp"
#include "eval/detector.hpp"
#include "eval/report.hpp"
#include "eval/tiles.hpp"
#include "models/multiview.hpp"
#include "nn/checkpoint.hpp"
#include "runtime/error.hpp"

using namespace recon;
namespace fs = std::filesystem;

TEST_CASE("base64 matches RFC 4648's test vectors") {
  auto b64 = [](const std::string& s) { return eval::base64_encode(std::vector<uint8_t>(s.begin(), s.end())); };
  CHECK(b64("") == "");
  CHECK(b64("f") == "Zg==");
  CHECK(b64("fo") == "Zm8=");
  CHECK(b64("foo") == "Zm9v");
  CHECK(b64("foob") == "Zm9vYg==");
  CHECK(b64("fooba") == "Zm9vYmE=");
  CHECK(b64("foobar") == "Zm9vYmFy");
  CHECK(eval::base64_encode({0xff, 0xfe, 0x00}) == "//4A");
}

TEST_CASE("tile offsets cover the axis, the last flush with the edge") {
  CHECK(eval::tile_starts(28, 28, 14) == std::vector<int>{0});
  CHECK(eval::tile_starts(56, 28, 14) == std::vector<int>{0, 14, 28});
  CHECK(eval::tile_starts(42, 28, 14) == std::vector<int>{0, 14});
  CHECK(eval::tile_starts(50, 20, 20) == std::vector<int>{0, 20, 30});
  CHECK_THROWS_AS(eval::tile_starts(20, 28, 14), Error);
  CHECK_THROWS_AS(eval::tile_starts(56, 28, 0), Error);
}

TEST_CASE("the stitcher averages overlapping windows") {
  eval::TileStitcher st(1, 4, 6);
  CHECK(st.uncovered() == 24);
  st.add(data::Image(1, 4, 4, 1.f), 0, 0);  // columns 0-3 get 1
  st.add(data::Image(1, 4, 4, 3.f), 0, 2);  // columns 2-5 get 3
  CHECK(st.uncovered() == 0);
  const data::Image r = st.result();
  for (int y = 0; y < 4; ++y) {
    CHECK(r.at(0, y, 0) == 1.f);
    CHECK(r.at(0, y, 1) == 1.f);
    CHECK(r.at(0, y, 2) == 2.f);  // (1 + 3) / 2
    CHECK(r.at(0, y, 3) == 2.f);
    CHECK(r.at(0, y, 5) == 3.f);
  }
  CHECK_THROWS_AS(st.add(data::Image(1, 4, 4, 0.f), 1, 0), Error);  // sticks out
  CHECK_THROWS_AS(st.add(data::Image(3, 2, 2, 0.f), 0, 0), Error);  // channels
}

TEST_CASE("heat map and overlay") {
  data::Image map(1, 1, 3);
  map.pixels = {0.f, 4.f, 100.f};
  const data::Image h = eval::heat_map(map, 8.0);
  REQUIRE(h.channels == 3);
  // 0: dark blue; >= vmax: red; the middle is neither.
  CHECK(h.at(0, 0, 0) == doctest::Approx(0.0));
  CHECK(h.at(2, 0, 0) == doctest::Approx(0.5));
  CHECK(h.at(0, 0, 2) == doctest::Approx(0.9));
  CHECK(h.at(1, 0, 2) == doctest::Approx(0.0));
  CHECK(h.at(1, 0, 1) > 0.5f);
  data::Image img(1, 1, 3, 1.f);
  const data::Image o = eval::overlay(img, map, 8.0);
  CHECK(o.at(0, 0, 2) == doctest::Approx(0.5 + 0.45));
  CHECK_THROWS_AS(eval::overlay(data::Image(1, 2, 3), map, 8.0), Error);
}

TEST_CASE("the report page holds the curves, the histogram and the embedded PNGs") {
  const fs::path dir = fs::temp_directory_path() / ("recon_report_" + std::to_string(getpid()));
  fs::create_directories(dir);
  data::Image img(1, 4, 4, 0.5f);
  data::write_png(dir / "a.png", img);
  eval::ReportInput in;
  in.title = "t <&>";
  in.summary = {{"k", "v"}};
  in.scores = {0.1f, 0.2f, 0.9f, 0.8f, 0.3f};
  in.labels = {0, 0, 1, 1, 0};
  in.threshold = 0.5;
  in.groups = {{"group", {{"case 1", {{"image", dir / "a.png"}}}}}};
  const std::string html = eval::render_report(in);
  CHECK(html.find("t &lt;&amp;&gt;") != std::string::npos);
  CHECK(html.find(eval::css_colour(eval::kRocColour)) != std::string::npos);
  CHECK(html.find(eval::css_colour(eval::kPrColour)) != std::string::npos);
  CHECK(html.find(eval::css_colour(eval::kNormalColour)) != std::string::npos);
  CHECK(html.find(eval::css_colour(eval::kAnomalyColour)) != std::string::npos);
  CHECK(html.find("AUROC 1.0000") != std::string::npos);
  CHECK(html.find("src=\"" + eval::png_data_uri(dir / "a.png") + "\"") != std::string::npos);
  CHECK(eval::png_data_uri(dir / "a.png").rfind("data:image/png;base64,iVBORw0KGgo", 0) == 0);  // the PNG signature
  in.labels = {0, 0, 0, 0, 0};
  CHECK_THROWS(eval::render_report(in));
  fs::remove_all(dir);
}

TEST_CASE("the calibration's decision threshold: quantile, F1-max, JSON, normalised score") {
  models::Calibration c;
  c.num_images = 5;
  c.views = {{"mse", 1, 0, 0, 0, 1, 0}};
  CHECK_FALSE(c.has_threshold());
  models::fit_threshold_quantile(c, {5, 1, 3, 2, 4}, 0.9);
  CHECK(c.has_threshold());
  CHECK(c.threshold == doctest::Approx(4.6));  // numpy.quantile([1..5], 0.9)
  CHECK(c.score_center == doctest::Approx(3.0));
  CHECK(c.threshold_rule == "quantile 0.9");
  CHECK(models::normalized_score(c, 3.0) == doctest::Approx(0.0));
  CHECK(models::normalized_score(c, 4.6) == doctest::Approx(1.0));
  const models::Calibration back = models::Calibration::from_json(c.to_json());
  CHECK(back.threshold == c.threshold);
  CHECK(back.score_center == c.score_center);
  CHECK(back.threshold_rule == c.threshold_rule);
  CHECK_THROWS_AS(models::fit_threshold_quantile(c, {1, 2}, 0.0), Error);
  // Too few scores for the false-positive rate a quantile stands for: a
  // warning naming the count and the number needed; enough: none.
  const std::string few = models::fit_threshold_quantile(c, {1, 2, 3, 4, 5, 6}, 0.99);
  CHECK_MESSAGE(few.find("only 6 calibration scores") != std::string::npos, few);
  CHECK_MESSAGE(few.find("at least 100 held-out normals") != std::string::npos, few);
  CHECK(models::fit_threshold_quantile(c, std::vector<double>(100, 1.0), 0.99).empty());
  CHECK(models::fit_threshold_quantile(c, {1, 2, 3, 4, 5, 6}, 0.8).empty());  // 6 x 0.2 >= 1
  CHECK_THROWS_AS(models::fit_threshold_quantile(c, {}, 0.5), Error);

  models::fit_threshold_f1(c, {0.1, 0.2, 0.7, 0.8, 0.9, 0.6}, {0, 0, 1, 1, 1, 0});
  CHECK(c.threshold == doctest::Approx(0.7));
  CHECK(c.threshold_rule == "f1-max");
  CHECK(c.score_center == doctest::Approx(0.2));

  // Older calibrations without a threshold still load, and say so.
  models::Calibration old;
  old.num_images = 2;
  old.views = c.views;
  const models::Calibration o = models::Calibration::from_json(old.to_json());
  CHECK_FALSE(o.has_threshold());
  CHECK_THROWS_AS(models::normalized_score(o, 1.0), Error);
}

TEST_CASE("a checkpoint's method: the config's app, else the tensor names") {
  const fs::path dir = fs::temp_directory_path() / ("recon_detect_" + std::to_string(getpid()));
  fs::create_directories(dir);
  nn::StateDict two;
  two.insert("rotnet.conv.weight", Tensor::zeros({2, 2}));
  two.insert("decoder.0.weight", Tensor::zeros({2}));
  nn::save_checkpoint((dir / "two.safetensors").string(), two);
  std::string how;
  CHECK(eval::detect_method((dir / "two.safetensors").string(), &how) == "twostage");
  CHECK(how.find("tensor names") != std::string::npos);
  CHECK_THROWS_WITH_AS(eval::load_detector((dir / "two.safetensors").string(), Device::cpu()),
                       doctest::Contains("method 2"), Error);

  nn::StateDict one;
  one.insert("encoder.0.weight", Tensor::zeros({2, 2}));
  nn::Json cfg = nn::Json::object();
  cfg.set("app", nn::Json("train_multiview"));
  nn::save_checkpoint((dir / "one.safetensors").string(), one, {}, "", cfg);
  CHECK(eval::detect_method((dir / "one.safetensors").string(), &how) == "multiview");
  CHECK(how.find("app") != std::string::npos);

  nn::StateDict other;
  other.insert("something.weight", Tensor::zeros({2}));
  nn::save_checkpoint((dir / "other.safetensors").string(), other);
  CHECK_THROWS_AS(eval::detect_method((dir / "other.safetensors").string()), Error);
  fs::remove_all(dir);
}
