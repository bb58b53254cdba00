// The evaluation report: a self-contained HTML page (inline SVG ROC and PR
// curves, a histogram of normal and anomalous scores, and the best and
// worst cases as image, reconstruction, heat-map overlay and mask, each a
// PNG embedded as a base64 data URI, so the page opens offline), plus the
// pieces: base64, the heat-map colour map and overlay, SVG plots.
// The plots use fixed, distinctive colours (kRocColour, ...) so that a test
// can find them in a screenshot of the rendered page; the case gallery sits
// on kGalleryBackground.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "data/image.hpp"

namespace recon::eval {

struct Rgb {
  uint8_t r, g, b;
};
inline constexpr Rgb kRocColour = {228, 0, 124};         // #e4007c
inline constexpr Rgb kPrColour = {0, 110, 230};          // #006ee6
inline constexpr Rgb kNormalColour = {0, 170, 90};       // #00aa5a: histogram, normals
inline constexpr Rgb kAnomalyColour = {255, 140, 0};     // #ff8c00: histogram, anomalies
inline constexpr Rgb kGalleryBackground = {18, 52, 86};  // #123456: behind the case thumbnails
std::string css_colour(Rgb c);                           // "#rrggbb"

std::string base64_encode(const std::vector<uint8_t>& bytes);
// "data:image/png;base64,..." of a file's bytes.
std::string png_data_uri(const std::filesystem::path& png_file);

// A map value v shown as colour heat(v / vmax) (clamped to [0, 1]): dark
// blue, blue, cyan-green, yellow, red. map: (1, H, W); result (3, H, W).
data::Image heat_map(const data::Image& map, double vmax);
// The image in gray, blended half and half with heat_map (the sizes must match).
data::Image overlay(const data::Image& image, const data::Image& map, double vmax);

// The plots (SVG elements of width x height pixels).
std::string svg_roc(const std::vector<double>& fpr, const std::vector<double>& tpr, double auroc, int width = 360,
                    int height = 320);
std::string svg_pr(const std::vector<double>& recall, const std::vector<double>& precision, double auprc,
                   int width = 360, int height = 320);
// Per-class densities over `bins` equal bins from the lowest to the highest
// score, side by side; a dashed line at `threshold` when finite.
std::string svg_histogram(const std::vector<float>& scores, const std::vector<int>& labels, double threshold,
                          int bins = 30, int width = 420, int height = 320);

// One case of the gallery: a title line and labelled PNG files.
struct ReportCase {
  std::string caption;
  std::vector<std::pair<std::string, std::filesystem::path>> pngs;  // (label, file)
};
struct ReportGroup {
  std::string title;
  std::vector<ReportCase> cases;
};
struct ReportInput {
  std::string title;
  std::vector<std::pair<std::string, std::string>> summary;  // table rows (name, value)
  std::vector<float> scores;
  std::vector<int> labels;
  double threshold = 0;  // NaN: none
  std::vector<ReportGroup> groups;
};
// The whole page. Needs both classes among the labels.
std::string render_report(const ReportInput& in);

// Escapes & < > " for HTML text and attributes.
std::string html_escape(const std::string& s);

}  // namespace recon::eval
