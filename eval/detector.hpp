// Detector: a trained checkpoint of either method behind one interface, so
// that recon_eval and recon_predict score images through the same code (and
// give identical scores for the same image). load_detector reads the
// checkpoint's config and picks the method: "app" == "train_multiview" is
// method 1 (ConvAE + MultiViewScorer, calibration in the config); method 2
// (train_twostage) is recognised by its config's "app" or, failing that, by
// its tensor name prefixes, and scored as train_twostage scores: the refined
// x_tilde (refiner in eval, z = mu) in the views mse, ssim, feature and
// rotation with the calibration its final checkpoint stores. fit_image brings a decoded image to the model's
// input (channels converted; size resized: area averaging when shrinking,
// bilinear when enlarging, as the training apps' --image-size does).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "data/image.hpp"
#include "models/multiview.hpp"
#include "nn/json.hpp"
#include "runtime/device.hpp"
#include "runtime/tensor.hpp"

namespace recon::eval {

// One scored batch, on the host: fused[i] the image score, x_hat (N, C, H, W)
// the reconstruction, map (N, 1, H, W) the pixel anomaly map.
struct DetectorOutput {
  std::vector<double> fused;
  Tensor x_hat;
  Tensor map;
};

class Detector {
 public:
  virtual ~Detector() = default;
  virtual std::string method() const = 0;  // "multiview" (method 1) or "twostage" (method 2)
  virtual int channels() const = 0;        // the model's input shape
  virtual int height() const = 0;
  virtual int width() const = 0;
  // The calibration (with its threshold when the checkpoint has one).
  virtual const models::Calibration& calibration() const = 0;
  // Scores x (N, C, H, W) in [0, 1] at the model's size, on any device; no tape.
  virtual DetectorOutput run(const Tensor& x) = 0;
  const nn::Json& config() const { return config_; }
  std::string detected_by;  // how the method was recognised (for reports)

 protected:
  nn::Json config_;
};

// Which method a checkpoint holds: "multiview" or "twostage" (and, in `how`,
// the evidence: the config's "app" or the tensor names). Throws when neither.
std::string detect_method(const std::string& checkpoint_path, std::string* how = nullptr);

// Loads a checkpoint of either method onto `device`.
std::unique_ptr<Detector> load_detector(const std::string& checkpoint_path, Device device);

// The window size the checkpoint was trained on (train_twostage --train-tile),
// the default --tile of recon_eval and recon_predict; 0 for whole images.
int trained_tile(const Detector& det);

// The image converted to `channels` (gray <-> RGB) and resized to height x width.
data::Image fit_image(const data::Image& img, int channels, int height, int width);
// A (N, C, H, W) CPU tensor of images that all have the same shape.
Tensor stack_images(const std::vector<data::Image>& images);

// How score_images scores: whole images fitted to the model (tile == 0), or
// tile mode at native resolution (eval/tiles: tile x tile windows `stride`
// apart, each fitted to the model when the sizes differ; stride 0 means
// tile / 2). batch_size images (or windows) go through the model at once,
// which bounds the memory.
struct ScoreOptions {
  int tile = 0;
  int stride = 0;
  int batch_size = 32;
};
// One image's result: the image as scored (fitted to the model, or native
// in tile mode, channels converted), its reconstruction and pixel map
// (stitched in tile mode) and the image score (the highest window score in
// tile mode).
struct ImageScore {
  double fused = 0;
  data::Image input, recon, map;
  int windows = 1;
};
std::vector<ImageScore> score_images(Detector& det, const std::vector<data::Image>& images, const ScoreOptions& opt);

}  // namespace recon::eval
