// The HTML report: SVG plots written as text, PNGs embedded as base64.
#include "eval/report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>

#include "eval/metrics.hpp"
#include "runtime/error.hpp"

namespace recon::eval {

namespace {

std::string fmt(double v, const char* f = "%.4f") {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// A polyline through (x, y) in [0, 1]^2 mapped into the plot box; at most
// ~2000 points (every k-th kept, the last always).
std::string polyline(const std::vector<double>& xs, const std::vector<double>& ys, double x0, double y0, double w,
                     double h, Rgb colour) {
  const size_t n = xs.size(), step = std::max<size_t>(1, n / 2000);
  std::ostringstream o;
  o << "<polyline fill=\"none\" stroke=\"" << css_colour(colour) << "\" stroke-width=\"4\" "
    << "stroke-linejoin=\"round\" points=\"";
  auto point = [&](size_t i) { o << fmt(x0 + xs[i] * w, "%.1f") << "," << fmt(y0 + (1 - ys[i]) * h, "%.1f") << " "; };
  size_t i = 0;
  for (; i < n; i += step) point(i);
  if (n > 0 && i - step != n - 1) point(n - 1);
  o << "\"/>";
  return o.str();
}

// Frame, ticks at 0, 0.5, 1 and axis titles of a unit-square plot.
std::string frame(double x0, double y0, double w, double h, const std::string& xlabel, const std::string& ylabel,
                  const std::string& title) {
  std::ostringstream o;
  o << "<rect x=\"" << x0 << "\" y=\"" << y0 << "\" width=\"" << w << "\" height=\"" << h
    << "\" fill=\"#ffffff\" stroke=\"#444\"/>";
  for (double t : {0.0, 0.5, 1.0}) {
    o << "<text x=\"" << x0 + t * w << "\" y=\"" << y0 + h + 16 << "\" font-size=\"12\" text-anchor=\"middle\">" << t
      << "</text>";
    o << "<text x=\"" << x0 - 6 << "\" y=\"" << y0 + (1 - t) * h + 4 << "\" font-size=\"12\" text-anchor=\"end\">" << t
      << "</text>";
  }
  o << "<text x=\"" << x0 + w / 2 << "\" y=\"" << y0 + h + 34 << "\" font-size=\"13\" text-anchor=\"middle\">"
    << xlabel << "</text>";
  o << "<text x=\"" << 14 << "\" y=\"" << y0 + h / 2 << "\" font-size=\"13\" text-anchor=\"middle\" transform=\"rotate(-90 14 "
    << y0 + h / 2 << ")\">" << ylabel << "</text>";
  o << "<text x=\"" << x0 + w / 2 << "\" y=\"16\" font-size=\"14\" font-weight=\"bold\" text-anchor=\"middle\">"
    << html_escape(title) << "</text>";
  return o.str();
}

std::string svg_open(int width, int height) {
  return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(width) + "\" height=\"" +
         std::to_string(height) + "\" viewBox=\"0 0 " + std::to_string(width) + " " + std::to_string(height) + "\">";
}

// The heat colour map: five stops, linear between them.
void heat_colour(double t, float rgb[3]) {
  static constexpr float kStops[5][3] = {{0.f, 0.f, 0.5f}, {0.f, 0.3f, 1.f}, {0.f, 0.9f, 0.6f}, {1.f, 0.9f, 0.f},
                                         {0.9f, 0.f, 0.f}};
  t = std::clamp(std::isfinite(t) ? t : 1.0, 0.0, 1.0) * 4.0;
  const int i = std::min(3, (int)t);
  const float f = (float)(t - i);
  for (int c = 0; c < 3; ++c) rgb[c] = kStops[i][c] + f * (kStops[i + 1][c] - kStops[i][c]);
}

}  // namespace

std::string css_colour(Rgb c) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", c.r, c.g, c.b);
  return buf;
}

std::string html_escape(const std::string& s) {
  std::string o;
  for (char ch : s) switch (ch) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      default: o += ch;
    }
  return o;
}

std::string base64_encode(const std::vector<uint8_t>& bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string o;
  o.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = (uint32_t)bytes[i] << 16 | (uint32_t)bytes[i + 1] << 8 | bytes[i + 2];
    for (int k = 3; k >= 0; --k) o += kAlphabet[(v >> (6 * k)) & 63];
  }
  if (const size_t rest = bytes.size() - i; rest > 0) {
    const uint32_t v = (uint32_t)bytes[i] << 16 | (rest == 2 ? (uint32_t)bytes[i + 1] << 8 : 0u);
    o += kAlphabet[(v >> 18) & 63];
    o += kAlphabet[(v >> 12) & 63];
    o += rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
    o += '=';
  }
  return o;
}

std::string png_data_uri(const std::filesystem::path& png_file) {
  std::ifstream f(png_file, std::ios::binary);
  RECON_CHECK(f.good(), "png_data_uri: cannot read " << png_file.string());
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return "data:image/png;base64," + base64_encode(bytes);
}

data::Image heat_map(const data::Image& map, double vmax) {
  RECON_CHECK(map.channels == 1, "heat_map: the map must have one channel, got " << map.shape_str());
  data::Image out(3, map.height, map.width);
  const size_t plane = map.plane();
  for (size_t i = 0; i < plane; ++i) {
    float rgb[3];
    heat_colour(vmax > 0 ? map.pixels[i] / vmax : 1.0, rgb);
    for (int c = 0; c < 3; ++c) out.pixels[c * plane + i] = rgb[c];
  }
  return out;
}

data::Image overlay(const data::Image& image, const data::Image& map, double vmax) {
  RECON_CHECK(image.same_size(map), "overlay: image " << image.shape_str() << " and map " << map.shape_str()
                                                      << " differ in size");
  data::Image out = heat_map(map, vmax);
  const size_t plane = image.plane();
  for (size_t i = 0; i < plane; ++i) {
    float gray = image.pixels[i];
    if (image.channels == 3)
      gray = 0.299f * image.pixels[i] + 0.587f * image.pixels[plane + i] + 0.114f * image.pixels[2 * plane + i];
    for (int c = 0; c < 3; ++c) out.pixels[c * plane + i] = 0.5f * gray + 0.5f * out.pixels[c * plane + i];
  }
  return out;
}

std::string svg_roc(const std::vector<double>& fpr, const std::vector<double>& tpr, double auroc, int width,
                    int height) {
  const double x0 = 50, y0 = 26, w = width - 70, h = height - 76;
  std::ostringstream o;
  o << svg_open(width, height) << frame(x0, y0, w, h, "false-positive rate", "true-positive rate",
                                        "ROC (AUROC " + fmt(auroc) + ")");
  o << "<line x1=\"" << x0 << "\" y1=\"" << y0 + h << "\" x2=\"" << x0 + w << "\" y2=\"" << y0
    << "\" stroke=\"#999\" stroke-dasharray=\"4 4\"/>";
  o << polyline(fpr, tpr, x0, y0, w, h, kRocColour) << "</svg>";
  return o.str();
}

std::string svg_pr(const std::vector<double>& recall, const std::vector<double>& precision, double auprc, int width,
                   int height) {
  const double x0 = 50, y0 = 26, w = width - 70, h = height - 76;
  // The step curve from (0, first precision), as average precision integrates it.
  std::vector<double> xs, ys;
  double last_r = 0;
  for (size_t i = 0; i < recall.size(); ++i) {
    xs.push_back(last_r);
    ys.push_back(precision[i]);
    xs.push_back(recall[i]);
    ys.push_back(precision[i]);
    last_r = recall[i];
  }
  std::ostringstream o;
  o << svg_open(width, height)
    << frame(x0, y0, w, h, "recall", "precision", "precision-recall (AUPRC " + fmt(auprc) + ")");
  o << polyline(xs, ys, x0, y0, w, h, kPrColour) << "</svg>";
  return o.str();
}

std::string svg_histogram(const std::vector<float>& scores, const std::vector<int>& labels, double threshold, int bins,
                          int width, int height) {
  RECON_CHECK(!scores.empty() && scores.size() == labels.size() && bins > 0, "svg_histogram: bad input");
  double lo = HUGE_VAL, hi = -HUGE_VAL;
  for (float s : scores)
    if (std::isfinite(s)) lo = std::min(lo, (double)s), hi = std::max(hi, (double)s);
  if (!(hi > lo)) hi = lo + 1;
  std::vector<double> count[2] = {std::vector<double>(bins, 0), std::vector<double>(bins, 0)};
  double total[2] = {0, 0};
  for (size_t i = 0; i < scores.size(); ++i) {
    if (!std::isfinite(scores[i])) continue;
    const int k = labels[i] != 0;
    const int b = std::min(bins - 1, (int)((scores[i] - lo) / (hi - lo) * bins));
    count[k][b] += 1;
    total[k] += 1;
  }
  double peak = 0;
  for (int k = 0; k < 2; ++k)
    for (double& c : count[k]) peak = std::max(peak, c = total[k] > 0 ? c / total[k] : 0);
  const double x0 = 50, y0 = 26, w = width - 70, h = height - 76, bw = w / bins;
  std::ostringstream o;
  o << svg_open(width, height) << "<rect x=\"" << x0 << "\" y=\"" << y0 << "\" width=\"" << w << "\" height=\"" << h
    << "\" fill=\"#ffffff\" stroke=\"#444\"/>";
  for (int k = 0; k < 2; ++k)
    for (int b = 0; b < bins; ++b) {
      const double bh = peak > 0 ? count[k][b] / peak * h : 0;
      if (bh <= 0) continue;
      o << "<rect x=\"" << fmt(x0 + b * bw + k * bw / 2, "%.2f") << "\" y=\"" << fmt(y0 + h - bh, "%.2f")
        << "\" width=\"" << fmt(bw / 2, "%.2f") << "\" height=\"" << fmt(bh, "%.2f") << "\" fill=\""
        << css_colour(k ? kAnomalyColour : kNormalColour) << "\"/>";
    }
  if (std::isfinite(threshold) && threshold >= lo && threshold <= hi) {
    const double tx = x0 + (threshold - lo) / (hi - lo) * w;
    o << "<line x1=\"" << tx << "\" y1=\"" << y0 << "\" x2=\"" << tx << "\" y2=\"" << y0 + h
      << "\" stroke=\"#333\" stroke-width=\"2\" stroke-dasharray=\"6 4\"/>";
  }
  o << "<text x=\"" << x0 << "\" y=\"" << y0 + h + 16 << "\" font-size=\"12\" text-anchor=\"start\">" << fmt(lo, "%.3g")
    << "</text><text x=\"" << x0 + w << "\" y=\"" << y0 + h + 16 << "\" font-size=\"12\" text-anchor=\"end\">"
    << fmt(hi, "%.3g") << "</text>";
  o << "<text x=\"" << x0 + w / 2 << "\" y=\"" << y0 + h + 34
    << "\" font-size=\"13\" text-anchor=\"middle\">image score (dashed: threshold)</text>";
  o << "<text x=\"" << x0 + w / 2
    << "\" y=\"16\" font-size=\"14\" font-weight=\"bold\" text-anchor=\"middle\">scores: <tspan fill=\""
    << css_colour(kNormalColour) << "\">normal</tspan> / <tspan fill=\"" << css_colour(kAnomalyColour)
    << "\">anomalous</tspan></text>";
  o << "</svg>";
  return o.str();
}

std::string render_report(const ReportInput& in) {
  const RocCurve roc = roc_curve(in.scores, in.labels);
  const PrCurve pr = pr_curve(in.scores, in.labels);
  std::ostringstream o;
  o << "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" << html_escape(in.title) << "</title>\n"
    << "<style>body{font-family:sans-serif;margin:16px;background:#fff;color:#222}"
       "table.summary td{padding:2px 12px 2px 0}.plots{display:flex;gap:12px;flex-wrap:nowrap}"
       ".gallery{background:"
    << css_colour(kGalleryBackground)
    << ";padding:8px;color:#eee}.gallery h3{margin:6px 0;font-size:14px}"
       ".row{display:flex;gap:10px;flex-wrap:wrap;margin-bottom:6px}"
       ".case{background:#22486e;padding:4px}.case .cap{font-size:11px;max-width:360px;overflow:hidden;"
       "white-space:nowrap;text-overflow:ellipsis}"
       ".case figure{display:inline-block;margin:2px;text-align:center;font-size:10px}"
       ".case img{width:80px;height:80px;image-rendering:pixelated;display:block}</style></head><body>\n";
  o << "<h1 style=\"font-size:20px\">" << html_escape(in.title) << "</h1>\n<table class=\"summary\">";
  for (const auto& [k, v] : in.summary) o << "<tr><td>" << html_escape(k) << "</td><td>" << html_escape(v) << "</td></tr>";
  o << "</table>\n<div class=\"plots\">" << svg_roc(roc.fpr, roc.tpr, auroc(in.scores, in.labels))
    << svg_pr(pr.recall, pr.precision, auprc(in.scores, in.labels))
    << svg_histogram(in.scores, in.labels, in.threshold) << "</div>\n";
  o << "<div class=\"gallery\" id=\"gallery\">\n";
  for (const ReportGroup& g : in.groups) {
    o << "<h3>" << html_escape(g.title) << "</h3><div class=\"row\">";
    for (const ReportCase& c : g.cases) {
      o << "<div class=\"case\"><div class=\"cap\" title=\"" << html_escape(c.caption) << "\">"
        << html_escape(c.caption) << "</div>";
      for (const auto& [label, file] : c.pngs)
        o << "<figure><img alt=\"" << html_escape(label) << "\" src=\"" << png_data_uri(file) << "\">"
          << html_escape(label) << "</figure>";
      o << "</div>";
    }
    o << "</div>\n";
  }
  o << "</div>\n</body></html>\n";
  return o.str();
}

}  // namespace recon::eval
