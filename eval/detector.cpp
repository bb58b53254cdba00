// load_detector: method 1 (ConvAE + MultiViewScorer) and method 2 (RotNet,
// TwoStageAE and Refiner, scored on x_tilde as train_twostage scores) from
// their checkpoints. score_images: whole-image and tile mode over any Detector.
#include "eval/detector.hpp"

#include <algorithm>
#include <cmath>

#include "data/transforms.hpp"
#include "eval/tiles.hpp"
#include "models/conv_ae.hpp"
#include "models/refiner.hpp"
#include "models/rotnet.hpp"
#include "models/twostage.hpp"
#include "nn/checkpoint.hpp"
#include "runtime/autograd.hpp"
#include "runtime/error.hpp"
#include "runtime/ops.hpp"

namespace recon::eval {

namespace {

const nn::Json* config_field(const nn::Json& config, std::string_view key) {
  return config.is_object() ? config.find(key) : nullptr;
}

// What both methods return for a batch x (on the model's device) and its
// reconstruction: the fused image scores, and the reconstruction and the
// pixel maps on the CPU.
DetectorOutput scored_output(models::MultiViewScorer& scorer, const Tensor& x, const Tensor& reconstruction) {
  const models::Scores s = scorer.score(scorer.errors(x, reconstruction), scorer.difficulty(x));
  DetectorOutput out;
  out.fused = s.fused;
  out.x_hat = reconstruction.to(Device::cpu());
  out.map = scorer.pixel_map(x, reconstruction).to(Device::cpu());
  return out;
}

// Method 1: the ConvAE and its calibrated scorer.
class MultiViewDetector : public Detector {
 public:
  MultiViewDetector(const std::string& path, const nn::Checkpoint& ck, Device device) : device_(device) {
    config_ = ck.config;
    models::ConvAEConfig mc;
    mc.width1 = (int)config_.at("width").as_int();
    mc.latent = (int)config_.at("latent").as_int();
    if (const nn::Json* img = config_field(config_, "image")) {
      mc.channels = (int)img->as_array().at(0).as_int();
      mc.height = (int)img->as_array().at(1).as_int();
      mc.width = (int)img->as_array().at(2).as_int();
    } else {
      // Older checkpoints: channels from the first convolution, a square
      // image from the flattened size 2 width1 (H/4)(W/4).
      mc.channels = (int)ck.model.at("encoder.0.weight").size(1);
      const int64_t flat = ck.model.at("to_latent.weight").size(1) / (2 * mc.width1);
      const int side = (int)std::lround(std::sqrt((double)flat)) * 4;
      mc.height = mc.width = side;
    }
    model_ = std::make_unique<models::ConvAE>(mc);
    nn::load_checkpoint(path, *model_);
    model_->to(device_);
    model_->eval();
    models::ConvAE* m = model_.get();
    scorer_ = std::make_unique<models::MultiViewScorer>([m](const Tensor& x) { return m->features(x); });
    RECON_CHECK(config_field(config_, "calibration"),
                path << ": the checkpoint holds no calibration (written before train_multiview finished?)");
    scorer_->set_calibration(models::Calibration::from_json(config_.at("calibration")));
    cfg_ = mc;
  }
  std::string method() const override { return "multiview"; }
  int channels() const override { return cfg_.channels; }
  int height() const override { return cfg_.height; }
  int width() const override { return cfg_.width; }
  const models::Calibration& calibration() const override { return scorer_->calibration(); }
  DetectorOutput run(const Tensor& x) override {
    NoGradGuard no_grad;
    const Tensor xd = x.to(device_);
    const Tensor x_hat = (*model_)(xd);
    return scored_output(*scorer_, xd, x_hat);
  }

 private:
  Device device_;
  models::ConvAEConfig cfg_;
  std::unique_ptr<models::ConvAE> model_;
  std::unique_ptr<models::MultiViewScorer> scorer_;
};

// Method 2's modules under train_twostage's checkpoint names: the RotNet
// inside the two-stage AE ("twostage.rotnet."), its decoder
// ("twostage.decoder.") and the refiner ("refiner.").
class Method2Model : public nn::Module {
 public:
  Method2Model(const models::RotNetConfig& rc, const models::TwoStageConfig& tc, const models::RefinerConfig& fc)
      : gen_(0) {
    rotnet = std::make_shared<models::RotNet>(rc, gen_);
    ae = register_module("twostage", std::make_shared<models::TwoStageAE>(rotnet, tc, gen_));
    refiner = register_module("refiner", std::make_shared<models::Refiner>(fc, gen_));
  }
  std::string type_name() const override { return "Method2"; }
  std::shared_ptr<models::RotNet> rotnet;
  std::shared_ptr<models::TwoStageAE> ae;
  std::shared_ptr<models::Refiner> refiner;

 private:
  Generator gen_;  // initial weights only (all replaced by the checkpoint's); the refiner keeps a pointer
};

// Method 2 (train_twostage): x_hat = D(E(x)), x_tilde = the refiner's output
// with z = mu (eval), scored on x_tilde by the multi-view scorer (mse, ssim,
// feature with phi = the RotNet's features, and the rotation score of x),
// with the x_tilde calibration the final checkpoint stores. config() is the
// training configuration (dataset, split, seed: what recon_eval's default
// test set reads) plus "app", "class", "model" and "calibration".
class TwoStageDetector : public Detector {
 public:
  TwoStageDetector(const std::string& path, const nn::Checkpoint& ck, Device device) : device_(device) {
    RECON_CHECK(config_field(ck.config, "config") && config_field(ck.config, "model"),
                path << ": a method 2 checkpoint without its \"config\" and \"model\" (not written by "
                        "train_twostage?)");
    RECON_CHECK(config_field(ck.config, "calibration"),
                path << ": the checkpoint holds no calibration (written before train_twostage finished scoring, "
                        "or with --no-score)");
    const nn::Json& tc_json = ck.config.at("config");
    const nn::Json& model = ck.config.at("model");
    config_ = tc_json;
    for (const char* key : {"app", "class", "model", "calibration"})
      if (const nn::Json* v = config_field(ck.config, key)) config_.set(key, *v);
    // --all-classes: the class this checkpoint belongs to.
    if (const nn::Json* all = config_field(tc_json, "all_classes"); all && all->is_bool() && all->as_bool()) {
      const std::string cls = ck.config.at("class").as_string();
      if (const std::string kind = string_field(tc_json, "dataset"); kind == "mvtec" || kind == "piped")
        config_.set("category", nn::Json(cls));
      else
        config_.set("normal_class", nn::Json((int64_t)std::stoi(cls)));
    }
    const nn::Json::Array& img = model.at("image").as_array();
    channels_ = (int)img.at(0).as_int();
    height_ = (int)img.at(1).as_int();
    width_ = (int)img.at(2).as_int();
    models::RotNetConfig rc;
    rc.channels = channels_;
    rc.height = height_;
    rc.width = width_;
    rc.base_width = (int)tc_json.at("width").as_int();
    rc.max_width = (int)tc_json.at("max_width").as_int();
    rc.target_size = (int)tc_json.at("target_size").as_int();
    models::TwoStageConfig tc;
    tc.ssim_weight = (float)tc_json.at("ssim_weight").as_number();
    tc.code = (int)tc_json.at("decoder_code").as_int();
    models::RefinerConfig fc;
    fc.channels = channels_;
    fc.height = height_;
    fc.width = width_;
    fc.base_width = (int)tc_json.at("refiner_width").as_int();
    fc.latent_channels = (int)tc_json.at("latent_channels").as_int();
    fc.beta = (float)tc_json.at("beta").as_number();
    model_ = std::make_unique<Method2Model>(rc, tc, fc);
    model_->load_state_dict(ck.model);
    model_->to(device_);
    model_->eval();
    models::ScorerOptions so;
    so.measure = models::parse_difficulty_measure(string_field(tc_json, "difficulty"));
    so.normalization = models::parse_normalization(string_field(tc_json, "normalization"));
    models::RotNet* rot = model_->rotnet.get();
    scorer_ = std::make_unique<models::MultiViewScorer>([rot](const Tensor& t) { return rot->features(t); }, so);
    scorer_->add_view(kViewRotation, [rot](const Tensor& t, const Tensor&) {
      return models::rotation_scores(*rot, t).to_vector();
    });
    scorer_->set_calibration(models::Calibration::from_json(config_.at("calibration")));
  }
  std::string method() const override { return "twostage"; }
  int channels() const override { return channels_; }
  int height() const override { return height_; }
  int width() const override { return width_; }
  const models::Calibration& calibration() const override { return scorer_->calibration(); }
  DetectorOutput run(const Tensor& x) override {
    NoGradGuard no_grad;
    const Tensor xd = x.to(device_);
    const Tensor x_hat = model_->ae->forward(xd);
    const Tensor x_tilde = model_->refiner->forward(xd, x_hat, false).x_tilde;
    return scored_output(*scorer_, xd, x_tilde);
  }

 private:
  static constexpr const char* kViewRotation = "rotation";  // train_twostage's extra view
  static std::string string_field(const nn::Json& j, std::string_view key) {
    const nn::Json* v = config_field(j, key);
    RECON_CHECK(v && v->is_string(), "the checkpoint's config has no string \"" << key << "\"");
    return v->as_string();
  }
  Device device_;
  int channels_ = 0, height_ = 0, width_ = 0;
  std::unique_ptr<Method2Model> model_;
  std::unique_ptr<models::MultiViewScorer> scorer_;
};

bool has_prefix(const nn::StateDict& sd, const std::string& prefix) {
  for (const auto& [name, t] : sd)
    if (name.rfind(prefix, 0) == 0) return true;
  return false;
}

std::string method_of(const nn::Checkpoint& ck, std::string* how) {
  if (const nn::Json* app = config_field(ck.config, "app"); app && app->is_string()) {
    if (how) *how = "config \"app\": \"" + app->as_string() + "\"";
    if (app->as_string() == "train_multiview") return "multiview";
    if (app->as_string() == "train_twostage") return "twostage";
  }
  // No (known) app marker: the tensor names.
  if (has_prefix(ck.model, "twostage.") || has_prefix(ck.model, "rotnet.") || has_prefix(ck.model, "refiner.")) {
    if (how) *how = "tensor names (twostage./rotnet./refiner. prefixes)";
    return "twostage";
  }
  if (has_prefix(ck.model, "encoder.") && has_prefix(ck.model, "to_latent.")) {
    if (how) *how = "tensor names (encoder./to_latent. prefixes)";
    return "multiview";
  }
  RECON_FAIL("the checkpoint is neither method's: no config \"app\" and no known tensor names");
}

// (C, H, W) image i of a (N, C, H, W) host tensor.
data::Image image_at(const Tensor& t, int64_t i) {
  return data::image_from_tensor(reshape(slice(t, 0, i, i + 1), {t.size(1), t.size(2), t.size(3)}));
}

}  // namespace

std::string detect_method(const std::string& checkpoint_path, std::string* how) {
  return method_of(nn::read_checkpoint(checkpoint_path), how);
}

std::unique_ptr<Detector> load_detector(const std::string& checkpoint_path, Device device) {
  const nn::Checkpoint ck = nn::read_checkpoint(checkpoint_path);
  std::string how;
  const std::string method = method_of(ck, &how);
  std::unique_ptr<Detector> det;
  if (method == "multiview") {
    det = std::make_unique<MultiViewDetector>(checkpoint_path, ck, device);
  } else {
    det = std::make_unique<TwoStageDetector>(checkpoint_path, ck, device);
  }
  det->detected_by = how;
  return det;
}

int trained_tile(const Detector& det) {
  const nn::Json* t = config_field(det.config(), "train_tile");
  if (!t) return 0;
  RECON_CHECK(t->is_number() && t->as_number() >= 0, "the checkpoint's config has a bad \"train_tile\"");
  return (int)t->as_int();
}

data::Image fit_image(const data::Image& img, int channels, int height, int width) {
  data::Image out = img;
  if (out.channels != channels) {
    RECON_CHECK(channels == 1 || channels == 3, "fit_image: the model takes " << channels << " channels");
    out = channels == 1 ? data::to_gray(out) : data::to_rgb(out);
  }
  if (out.height != height || out.width != width) {
    const data::ResizeMode mode = height < out.height || width < out.width ? data::ResizeMode::Area
                                                                          : data::ResizeMode::Bilinear;
    out = data::resize(out, height, width, mode);
  }
  return out;
}

Tensor stack_images(const std::vector<data::Image>& images) {
  RECON_CHECK(!images.empty(), "stack_images: no images");
  const data::Image& f = images.front();
  std::vector<float> all;
  all.reserve(images.size() * f.numel());
  for (const data::Image& im : images) {
    RECON_CHECK(im.channels == f.channels && im.same_size(f),
                "stack_images: " << im.shape_str() << " differs from " << f.shape_str());
    all.insert(all.end(), im.pixels.begin(), im.pixels.end());
  }
  return Tensor::from_vector(all, {(int64_t)images.size(), f.channels, f.height, f.width});
}

std::vector<ImageScore> score_images(Detector& det, const std::vector<data::Image>& images, const ScoreOptions& opt) {
  RECON_CHECK(opt.batch_size > 0, "score_images: the batch size must be positive");
  const int c = det.channels(), h = det.height(), w = det.width();
  std::vector<ImageScore> out(images.size());
  if (opt.tile <= 0) {
    for (size_t b = 0; b < images.size(); b += (size_t)opt.batch_size) {
      const size_t e = std::min(images.size(), b + (size_t)opt.batch_size);
      std::vector<data::Image> batch;
      for (size_t i = b; i < e; ++i) batch.push_back(fit_image(images[i], c, h, w));
      const DetectorOutput r = det.run(stack_images(batch));
      for (size_t i = b; i < e; ++i) {
        out[i].fused = r.fused[i - b];
        out[i].input = std::move(batch[i - b]);
        out[i].recon = image_at(r.x_hat, (int64_t)(i - b));
        out[i].map = image_at(r.map, (int64_t)(i - b));
      }
    }
    return out;
  }
  // Tile mode: windows of every image pooled into batches.
  const int tile = opt.tile, stride = opt.stride > 0 ? opt.stride : std::max(1, opt.tile / 2);
  struct Window {
    size_t image;
    int top, left;
  };
  std::vector<Window> windows;
  std::vector<data::Image> native(images.size());
  std::vector<TileStitcher> recon, maps;
  for (size_t i = 0; i < images.size(); ++i) {
    native[i] = fit_image(images[i], c, images[i].height, images[i].width);
    RECON_CHECK(tile <= native[i].height && tile <= native[i].width,
                "tile mode: the tile (" << tile << ") is larger than image " << i << " " << native[i].shape_str());
    recon.emplace_back(c, native[i].height, native[i].width);
    maps.emplace_back(1, native[i].height, native[i].width);
    out[i].fused = -HUGE_VAL;
    out[i].windows = 0;
    for (int top : tile_starts(native[i].height, tile, stride))
      for (int left : tile_starts(native[i].width, tile, stride)) windows.push_back({i, top, left});
  }
  for (size_t b = 0; b < windows.size(); b += (size_t)opt.batch_size) {
    const size_t e = std::min(windows.size(), b + (size_t)opt.batch_size);
    std::vector<data::Image> batch;
    for (size_t k = b; k < e; ++k)
      batch.push_back(fit_image(data::crop(native[windows[k].image], windows[k].top, windows[k].left, tile, tile), c,
                                h, w));
    const DetectorOutput r = det.run(stack_images(batch));
    for (size_t k = b; k < e; ++k) {
      const Window& win = windows[k];
      ImageScore& s = out[win.image];
      s.fused = std::max(s.fused, r.fused[k - b]);
      ++s.windows;
      data::Image rk = image_at(r.x_hat, (int64_t)(k - b)), mk = image_at(r.map, (int64_t)(k - b));
      if (rk.height != tile || rk.width != tile) {
        rk = data::resize(rk, tile, tile, data::ResizeMode::Bilinear);
        mk = data::resize(mk, tile, tile, data::ResizeMode::Bilinear);
      }
      recon[win.image].add(rk, win.top, win.left);
      maps[win.image].add(mk, win.top, win.left);
    }
  }
  for (size_t i = 0; i < images.size(); ++i) {
    out[i].input = std::move(native[i]);
    out[i].recon = recon[i].result();
    out[i].map = maps[i].result();
  }
  return out;
}

}  // namespace recon::eval
