// train_twostage: method 2 end to end (DESIGN.md), the project's main app.
//   Stage 1: RotNet (encoder E + rotation head) on the four rotations of
//            every normal training image, cross-entropy; rotation accuracy on
//            the held-out normals after each epoch.
//   Stage 2: E frozen, a decoder D learns x_hat = D(E(x)) with
//            MSE + lambda (1 - SSIM); D first squeezes E(x) to a small code
//            (--decoder-code, a real bottleneck), then decodes.
//   Stage 3: the refiner sees (x, x_hat) and outputs x_tilde through a
//            variational bottleneck; loss = per-image SSE + beta KL. Reports
//            its rate (KL nats per image) and the held-out MSE of x_hat and
//            x_tilde.
//   Scoring: the multi-view scorer (mse, ssim, feature with phi = E's pooled
//            features, plus the RotNet rotation score as an extra view),
//            calibrated on held-out normals only (the decision threshold:
//            --threshold-quantile of their fused x_tilde scores); the image
//            AUROC of every view and of the fused score, for x_hat and for
//            x_tilde; pixel AUROC and AUPRO when the test set has masks.
// A checkpoint (atomic) after every epoch and on Ctrl-C holds every stage's
// weights, the running stage's optimizer, the stage/epoch/step counters and
// the refiner's noise generator, so --resume continues bitwise-identically
// (the loader's order depends only on (seed, epoch)). run.json holds the
// configuration, the metrics and the timings.
// CUDA graphs (--cuda-graphs on, the default, when the device is CUDA): each
// stage's training step (models::twostage_step_outputs inside
// nn::training_step) runs eagerly once, is captured into a CUDA graph and
// replayed (runtime/cuda_graph.hpp), with the same numbers as eager steps;
// the loss of a step is read while the next one runs.
// Random-tile training (--train-tile N): the model sees N x N windows at
// native resolution, each a random window of a random training normal
// (--tiles-per-epoch of them per epoch); the calibration and test images are
// then scored in tile mode (eval/tiles: windows N / 2 apart, the image score
// the highest window score, the maps stitched), as recon_eval and
// recon_predict score a checkpoint that stores train_tile.
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <sstream>

#include "apps/anomaly_data.hpp"
#include "apps/cli.hpp"
#include "data/loader.hpp"
#include "eval/detector.hpp"
#include "eval/metrics.hpp"
#include "eval/tiles.hpp"
#include "models/difficulty.hpp"
#include "models/multiview.hpp"
#include "models/refiner.hpp"
#include "models/rotnet.hpp"
#include "models/twostage.hpp"
#include "nn/checkpoint.hpp"
#include "nn/optim.hpp"
#include "runtime/autograd.hpp"
#include "runtime/cuda_graph.hpp"
#include "runtime/error.hpp"
#include "runtime/ops.hpp"
#include "runtime/profile.hpp"

using namespace recon;
namespace fs = std::filesystem;
using models::DifficultyMeasure;
using models::Normalization;

namespace {

constexpr int kExitInterrupted = 130;  // 128 + SIGINT, what a shell reports for Ctrl-C
constexpr const char* kViewRotation = "rotation";
const char* const kStageNames[4] = {"", "rotnet", "decoder", "refiner"};

// Set by SIGINT (and by --stop-after-steps, which takes the same path); the
// training loops look at it after every step. A second Ctrl-C exits at once.
volatile std::sig_atomic_t g_interrupt = 0;
extern "C" void on_sigint(int) {
  if (g_interrupt) std::_Exit(kExitInterrupted);
  g_interrupt = 1;
}

struct Config {
  apps::DataSpec data;
  int normal_class = 0;
  bool all_classes = false;
  // Epochs per stage and widths, chosen on held-out normals within the time
  // budget of the default run (results/fashion_mnist_twostage.md): the held-out
  // rotation accuracy peaks at epoch 3; the decoder's held-out loss still falls
  // slowly after 4; the refiner's rate settles in 2.
  int epochs_rotnet = 3;
  int epochs_decoder = 4;
  int epochs_refiner = 2;
  int batch_size = 64;
  float lr_rotnet = 1e-3f;
  float lr_decoder = 1e-3f;
  float lr_refiner = 1e-3f;
  float ssim_weight = 1.f;  // lambda of stage 2
  // Stage 2's bottleneck, numbers per image, chosen a priori (DESIGN.md: "a
  // latent far smaller than the image, e.g. 32-128 numbers for 28x28"): the
  // 32 of method 1's ConvAE. The frozen features (64x7x7 = 3136 numbers) are
  // four times the 784 pixels; decoded directly they let the decoder copy.
  int decoder_code = 32;
  float beta = 0.01f;       // stage 3 KL weight, per-image SSE scale (models/refiner.hpp)
  int width = 16;           // RotNet stem channels: 28x28 -> features (64, 7, 7)
  int max_width = 64;       // RotNet channel cap
  int target_size = 8;      // RotNet stride-2 stages until max(H, W) <= this
  int refiner_width = 32;
  int latent_channels = 4;
  std::string difficulty = "entropy";
  std::string normalization = "residual";
  double threshold_quantile = 0.99;  // of the calibration normals' fused scores (x_tilde): the stored threshold
  uint64_t seed = 0;
  std::string device = "auto";
  std::string cuda_graphs = "on";  // on | off: capture and replay the training steps (CUDA only)
  std::string out = "runs/train_twostage";
  std::string stages = "1,2,3";
  int train_tile = 0;       // random-tile training: the window size (0: whole images)
  int tiles_per_epoch = 0;  // windows per epoch (0: as many as cover the training images once)
  bool resume = false;
  bool no_score = false;     // train only (hyperparameter sweeps read the held-out numbers)
  int stop_after = 0;        // tests: stop after this many epochs (all stages) of this invocation
  int stop_after_steps = 0;  // tests: act as if Ctrl-C came after this many steps
};

int stage_epochs(const Config& c, int s) {
  return s == 1 ? c.epochs_rotnet : s == 2 ? c.epochs_decoder : c.epochs_refiner;
}
float stage_lr(const Config& c, int s) { return s == 1 ? c.lr_rotnet : s == 2 ? c.lr_decoder : c.lr_refiner; }

nn::Json config_json(const Config& c) {
  nn::Json j = nn::Json::object();
  apps::set_data_json(j, c.data);
  j.set("calibration_fraction", nn::Json(c.data.calibration_fraction));
  j.set("normal_class", nn::Json(c.normal_class));
  j.set("all_classes", nn::Json(c.all_classes));
  j.set("epochs_rotnet", nn::Json(c.epochs_rotnet));
  j.set("epochs_decoder", nn::Json(c.epochs_decoder));
  j.set("epochs_refiner", nn::Json(c.epochs_refiner));
  j.set("batch_size", nn::Json(c.batch_size));
  j.set("lr_rotnet", nn::Json((double)c.lr_rotnet));
  j.set("lr_decoder", nn::Json((double)c.lr_decoder));
  j.set("lr_refiner", nn::Json((double)c.lr_refiner));
  j.set("ssim_weight", nn::Json((double)c.ssim_weight));
  j.set("decoder_code", nn::Json(c.decoder_code));
  j.set("beta", nn::Json((double)c.beta));
  j.set("width", nn::Json(c.width));
  j.set("max_width", nn::Json(c.max_width));
  j.set("target_size", nn::Json(c.target_size));
  j.set("refiner_width", nn::Json(c.refiner_width));
  j.set("latent_channels", nn::Json(c.latent_channels));
  j.set("difficulty", nn::Json(c.difficulty));
  j.set("normalization", nn::Json(c.normalization));
  j.set("threshold_quantile", nn::Json(c.threshold_quantile));
  j.set("seed", nn::Json((uint64_t)c.seed));
  j.set("device", nn::Json(c.device));
  j.set("cuda_graphs", nn::Json(c.cuda_graphs));
  j.set("out", nn::Json(c.out));
  j.set("stages", nn::Json(c.stages));
  j.set("train_tile", nn::Json(c.train_tile));  // recon_eval / recon_predict: their default --tile
  j.set("tiles_per_epoch", nn::Json(c.tiles_per_epoch));
  j.set("no_score", nn::Json(c.no_score));
  return j;
}

// "1,2,3", "23", "3" -> which stages to train.
std::array<bool, 4> parse_stages(const std::string& s) {
  std::array<bool, 4> on{};
  for (char ch : s) {
    if (ch == ',' || ch == ' ') continue;
    RECON_CHECK(ch >= '1' && ch <= '3', "--stages '" << s << "': expected stage numbers 1-3, e.g. 1,2,3 or 3");
    on[ch - '0'] = true;
  }
  RECON_CHECK(on[1] || on[2] || on[3], "--stages '" << s << "' names no stage");
  return on;
}

// ---- the model of all three stages ---------------------------------------------------

// The RotNet (inside the two-stage AE, child "twostage.rotnet"), the decoder
// ("twostage.decoder") and the refiner ("refiner") as one module, so that one
// state_dict holds every stage. Each part draws its initial weights from its
// own generator, so the initialisation never depends on which stages run.
class Method2 : public nn::Module {
 public:
  Method2(const models::RotNetConfig& rc, const models::TwoStageConfig& tc, const models::RefinerConfig& fc,
          uint64_t seed)
      : noise_gen_(seed + 2) {
    Generator rot_gen(seed), dec_gen(seed + 1);
    rotnet = std::make_shared<models::RotNet>(rc, rot_gen);
    ae = register_module("twostage", std::make_shared<models::TwoStageAE>(rotnet, tc, dec_gen));
    // noise_gen_ draws the refiner's initial weights, then its bottleneck noise.
    refiner = register_module("refiner", std::make_shared<models::Refiner>(fc, noise_gen_));
  }
  std::string type_name() const override { return "Method2"; }
  Generator& noise_generator() { return noise_gen_; }

  std::shared_ptr<models::RotNet> rotnet;
  std::shared_ptr<models::TwoStageAE> ae;
  std::shared_ptr<models::Refiner> refiner;

 private:
  Generator noise_gen_;  // initialised before the constructor body runs; outlives the refiner
};

// The checkpoint names of a stage's weights.
const char* stage_prefix(int s) { return s == 1 ? "twostage.rotnet." : s == 2 ? "twostage.decoder." : "refiner."; }

nn::NamedTensors stage_parameters(const Method2& m, int s) {
  nn::NamedTensors out;
  const std::string prefix = stage_prefix(s);
  for (auto& [name, t] : m.named_parameters())
    if (name.rfind(prefix, 0) == 0) out.emplace_back(name.substr(prefix.size()), t);
  return out;
}

// Sets every module's mode and freezing for training stage s (0: scoring).
void set_modes(Method2& m, int s) {
  m.eval();
  if (s == 1) {
    m.rotnet->unfreeze();
    m.rotnet->train();
  } else {
    m.rotnet->freeze();
    if (s == 2) m.ae->train();  // the decoder; TwoStageAE keeps the RotNet in eval
    if (s == 3) m.refiner->train();
  }
}

// Where training stands: complete epochs per stage, and for the stage that
// was running when the checkpoint was written, the steps already taken in
// its next epoch (a Ctrl-C mid-epoch) and its optimizer.
struct TrainState {
  std::array<int, 4> epochs_done{};
  int running_stage = 0;       // the stage whose optimizer the checkpoint holds (0: none)
  int64_t steps_in_epoch = 0;  // of running_stage's epoch epochs_done[running_stage]
  uint64_t noise_offset = 0;   // the refiner's noise generator
};

nn::Json state_json(const TrainState& st) {
  nn::Json j = nn::Json::object();
  nn::Json e = nn::Json::array();
  for (int s = 1; s <= 3; ++s) e.push_back(nn::Json(st.epochs_done[s]));
  j.set("epochs_done", std::move(e));
  j.set("running_stage", nn::Json(st.running_stage));
  j.set("steps_in_epoch", nn::Json(st.steps_in_epoch));
  j.set("refiner_noise_offset", nn::Json((uint64_t)st.noise_offset));
  return j;
}

TrainState state_from_json(const nn::Json& j) {
  TrainState st;
  const nn::Json::Array& e = j.at("epochs_done").as_array();
  RECON_CHECK(e.size() == 3, "checkpoint: epochs_done must hold 3 numbers");
  for (int s = 1; s <= 3; ++s) st.epochs_done[s] = (int)e[s - 1].as_int();
  st.running_stage = (int)j.at("running_stage").as_int();
  st.steps_in_epoch = j.at("steps_in_epoch").as_int();
  st.noise_offset = (uint64_t)j.at("refiner_noise_offset").as_int();
  return st;
}

// ---- one class: data, model, the three stages, scoring ---------------------------------

// The window stride of tile-mode scoring: recon_eval's and recon_predict's
// default (eval::ScoreOptions, stride 0), so the stored calibration fits them.
int tile_stride(int tile) { return std::max(1, tile / 2); }

struct Interrupted {};  // thrown to unwind after the checkpoint of a Ctrl-C was written
struct StoppedForTest {};  // --stop-after reached (checkpoint written)

// A batch of scoring units: whole images of a dataset (through the data
// transform), or in tile mode every tile x tile window of every image at
// native resolution, tile / 2 apart (eval::tile_starts, the windows of
// recon_eval --tile), the windows of one image consecutive.
struct UnitBatch {
  Tensor x;                        // (N, C, S, S) on the device, S the model's size
  Tensor masks;                    // (N, 1, S, S) on the CPU; undefined when the dataset has none
  std::vector<size_t> image;       // the dataset index of each unit
  std::vector<int> top, left;      // the unit's place in its image (0, 0 for whole images)
  std::vector<int> height, width;  // the size of its image as scored
};

class ClassRun {
 public:
  ClassRun(const Config& cfg, Device device, std::string cls, fs::path out_dir, int* epochs_run, int64_t* steps_run)
      : cfg_(cfg), device_(device), cls_(std::move(cls)), out_dir_(std::move(out_dir)), epochs_run_(epochs_run),
        steps_run_(steps_run) {}

  nn::Json run();

 private:
  void build();
  void prepare_state();
  nn::Checkpoint read_own_checkpoint() const;
  void train_stage(int s);
  nn::Json heldout(int s);
  void save(const nn::Optimizer* opt, const nn::Json* calibration = nullptr);
  nn::Json score();
  data::LoaderOptions loader_options(int64_t batch, bool shuffle, uint64_t seed) const;
  void for_each_unit_batch(const data::DatasetPtr& ds, int64_t batch,
                           const std::function<void(const UnitBatch&)>& fn) const;

  const Config& cfg_;
  Device device_;
  std::string cls_;
  fs::path out_dir_;
  int* epochs_run_;
  int64_t* steps_run_;
  std::string ckpt_;
  apps::AnomalyData data_;
  data::DatasetPtr train_set_;       // the training samples: the normals, or their random windows
  data::Transform train_transform_;  // data_.transform, or the random window
  std::unique_ptr<Method2> m_;
  TrainState st_;
  std::array<bool, 4> train_on_{};
  nn::Json model_json_ = nn::Json::object();
  std::array<nn::Json, 4> log_{nn::Json::array(), nn::Json::array(), nn::Json::array(), nn::Json::array()};
  std::array<double, 4> stage_secs_{};  // training and held-out time per stage, over every invocation
};

data::LoaderOptions ClassRun::loader_options(int64_t batch, bool shuffle, uint64_t seed) const {
  data::LoaderOptions lo;
  lo.batch_size = batch;
  lo.shuffle = shuffle;
  lo.seed = seed;
  lo.device = device_;
  lo.transform = data_.transform;
  return lo;
}

void ClassRun::for_each_unit_batch(const data::DatasetPtr& ds, int64_t batch,
                                   const std::function<void(const UnitBatch&)>& fn) const {
  const int tile = cfg_.train_tile;
  if (tile <= 0) {
    data::DataLoader loader(ds, loader_options(batch, false, 0));
    loader.start_epoch(0);
    while (auto b = loader.next()) {
      UnitBatch u;
      u.x = b->images;
      u.masks = b->masks.defined() ? b->masks.to(Device::cpu()) : Tensor();
      u.image = b->indices;
      const size_t n = u.image.size();
      u.top.assign(n, 0);
      u.left.assign(n, 0);
      u.height.assign(n, data_.height);
      u.width.assign(n, data_.width);
      fn(u);
    }
    return;
  }
  const int stride = tile_stride(tile);
  std::vector<data::Image> images, masks;
  UnitBatch u;
  auto flush = [&] {
    if (images.empty()) return;
    u.x = eval::stack_images(images).to(device_);
    u.masks = masks.empty() ? Tensor() : eval::stack_images(masks);
    fn(u);
    images.clear();
    masks.clear();
    u = UnitBatch{};
  };
  for (size_t i = 0; i < ds->size(); ++i) {
    const data::Sample s = ds->get(i);
    // Channels as the model takes them, the size as stored (eval::score_images).
    const data::Image img = eval::fit_image(s.image, data_.channels, s.image.height, s.image.width);
    RECON_CHECK(tile <= img.height && tile <= img.width, "tile mode: the tile (" << tile << ") is larger than "
                                                                                 << ds->source(i) << " ("
                                                                                 << img.shape_str() << ")");
    for (int top : eval::tile_starts(img.height, tile, stride))
      for (int left : eval::tile_starts(img.width, tile, stride)) {
        images.push_back(data::crop(img, top, left, tile, tile));
        if (ds->has_masks()) masks.push_back(data::crop(s.mask, top, left, tile, tile));
        u.image.push_back(i);
        u.top.push_back(top);
        u.left.push_back(left);
        u.height.push_back(img.height);
        u.width.push_back(img.width);
        if ((int64_t)images.size() == batch) flush();
      }
  }
  flush();
}

void ClassRun::build() {
  data_ = apps::load_anomaly_data(cfg_.data, cls_, cfg_.seed);
  train_set_ = data_.split.train;
  train_transform_ = data_.transform;
  if (cfg_.train_tile > 0) {
    // Windows of any size, but of one channel count:
    apps::check_one_image_shape(cfg_.data, data_, "train_twostage", /*check_size=*/false);
    RECON_CHECK(cfg_.train_tile <= std::min(data_.height, data_.width),
                "--train-tile " << cfg_.train_tile << " is larger than the images (" << data_.height << "x"
                                << data_.width << ", " << data_.split.train->source(0) << ")");
    const int64_t count = cfg_.tiles_per_epoch > 0 ? cfg_.tiles_per_epoch
                                                   : apps::area_tiles_per_epoch(data_.split.train->size(),
                                                                                data_.height, data_.width,
                                                                                cfg_.train_tile);
    apps::TileSampling ts = apps::random_tiles(data_.split.train, cfg_.train_tile, count);
    train_set_ = ts.dataset;
    train_transform_ = ts.transform;
    std::printf("[%s] random-tile training: %lld windows of %dx%d per epoch from %dx%d images; scoring in tile mode "
                "(stride %d)\n",
                cls_.c_str(), (long long)count, cfg_.train_tile, cfg_.train_tile, data_.height, data_.width,
                tile_stride(cfg_.train_tile));
    data_.height = data_.width = cfg_.train_tile;  // the model's input
  } else {
    apps::check_one_image_shape(cfg_.data, data_, "train_twostage");  // whole images: one shape, before training
  }
  RECON_CHECK(data_.height == data_.width, "train_twostage: RotNet needs square images, got "
                                               << data_.height << "x" << data_.width
                                               << "; pass --image-size S to resize to S x S");
  RECON_CHECK(data_.height >= 6, "train_twostage: images must be at least 6x6 for the SSIM term, got "
                                     << data_.height << "x" << data_.width << " (use --image-size)");
  RECON_CHECK(data_.split.calibration->size() >= 2,
              "train_twostage: the calibration needs at least 2 held-out normals, got "
                  << data_.split.calibration->size() << " (raise --calibration-fraction)");
  std::printf("[%s] %s: train %zu normals, calibration %zu held-out normals, test %zu%s; images %dx%dx%d\n",
              cls_.c_str(), data_.description.c_str(), data_.split.train->size(), data_.split.calibration->size(),
              data_.split.test->size(), data_.has_masks ? " (with masks)" : "", data_.channels, data_.height,
              data_.width);
  models::RotNetConfig rc;
  rc.channels = data_.channels;
  rc.height = data_.height;
  rc.width = data_.width;
  rc.base_width = cfg_.width;
  rc.max_width = cfg_.max_width;
  rc.target_size = cfg_.target_size;
  models::TwoStageConfig tc;
  tc.ssim_weight = cfg_.ssim_weight;
  tc.code = cfg_.decoder_code;
  models::RefinerConfig fc;
  fc.channels = data_.channels;
  fc.height = data_.height;
  fc.width = data_.width;
  fc.base_width = cfg_.refiner_width;
  fc.latent_channels = cfg_.latent_channels;
  fc.beta = cfg_.beta;
  m_ = std::make_unique<Method2>(rc, tc, fc, cfg_.seed);
  m_->to(device_);
  model_json_.set("image", nn::Json::array({nn::Json(data_.channels), nn::Json(data_.height), nn::Json(data_.width)}));
  model_json_.set("rotnet_feature_channels", nn::Json(m_->rotnet->feature_channels()));
  model_json_.set("rotnet_feature_size",
                  nn::Json::array({nn::Json(m_->rotnet->feature_size().h), nn::Json(m_->rotnet->feature_size().w)}));
  model_json_.set("parameters_rotnet", nn::Json(m_->rotnet->num_parameters()));
  model_json_.set("decoder_code", nn::Json(cfg_.decoder_code));
  model_json_.set("parameters_decoder", nn::Json(m_->ae->num_parameters() - m_->rotnet->num_parameters()));
  model_json_.set("parameters_refiner", nn::Json(m_->refiner->num_parameters()));
  std::printf("[%s] RotNet %lld parameters, features (%d, %d, %d); decoder %lld (code %s); refiner %lld (latent %d x %d x %d)\n",
              cls_.c_str(), (long long)m_->rotnet->num_parameters(), m_->rotnet->feature_channels(),
              m_->rotnet->feature_size().h, m_->rotnet->feature_size().w,
              (long long)(m_->ae->num_parameters() - m_->rotnet->num_parameters()),
              cfg_.decoder_code > 0 ? std::to_string(cfg_.decoder_code).c_str() : "none: features decoded directly",
              (long long)m_->refiner->num_parameters(), cfg_.latent_channels, (data_.height + 3) / 4,
              (data_.width + 3) / 4);
}

// The newest usable checkpoint of this run (<out>/checkpoint.safetensors, or
// its .prev when the newest is damaged), refused unless train_twostage wrote it.
nn::Checkpoint ClassRun::read_own_checkpoint() const {
  nn::LatestCheckpoint latest = nn::read_latest_good_checkpoint(ckpt_);
  nn::require_checkpoint_app(latest.checkpoint, latest.used_path, "train_twostage");
  return std::move(latest.checkpoint);
}

// Decides where training starts: --resume continues from the checkpoint;
// --stages without some stage takes that stage's weights from it; listed
// stages train from their fresh initialisation.
void ClassRun::prepare_state() {
  train_on_ = parse_stages(cfg_.stages);
  const bool all = train_on_[1] && train_on_[2] && train_on_[3];
  const bool have = fs::exists(ckpt_);
  if (cfg_.resume && have) {
    nn::Checkpoint ck = read_own_checkpoint();
    m_->load_state_dict(ck.model);
    st_ = state_from_json(ck.config.at("state"));
    for (int s = 1; s <= 3; ++s) {
      log_[s] = ck.config.at("log").at(kStageNames[s]);
      stage_secs_[s] = ck.config.at("stage_seconds").at(kStageNames[s]).as_number();
    }
    m_->noise_generator().set_state(m_->noise_generator().seed(), st_.noise_offset);
    std::printf("[%s] resuming from %s: epochs done rotnet %d, decoder %d, refiner %d", cls_.c_str(), ckpt_.c_str(),
                st_.epochs_done[1], st_.epochs_done[2], st_.epochs_done[3]);
    if (st_.steps_in_epoch > 0)
      std::printf(", %lld steps into the next %s epoch", (long long)st_.steps_in_epoch,
                  kStageNames[st_.running_stage]);
    std::printf("\n");
    return;
  }
  if (cfg_.resume) std::printf("[%s] --resume: no checkpoint at %s, starting fresh\n", cls_.c_str(), ckpt_.c_str());
  if (all) return;
  RECON_CHECK(have, "--stages " << cfg_.stages << " takes the other stages' weights from " << ckpt_
                                << ", which does not exist; train them first (e.g. --stages 1,2,3)");
  // Keep the fresh initialisation of the listed stages, load the rest.
  std::vector<std::pair<Tensor, Tensor>> fresh;  // live tensor, its initial value
  for (auto& [name, t] : m_->state_dict())
    for (int s = 1; s <= 3; ++s)
      if (train_on_[s] && name.rfind(stage_prefix(s), 0) == 0) fresh.emplace_back(t, t.clone());
  const uint64_t fresh_offset = m_->noise_generator().offset();
  nn::Checkpoint ck = read_own_checkpoint();
  m_->load_state_dict(ck.model);
  for (auto& [live, init] : fresh) live.copy_(init);
  const TrainState saved = state_from_json(ck.config.at("state"));
  for (int s = 1; s <= 3; ++s) {
    if (train_on_[s]) continue;
    st_.epochs_done[s] = saved.epochs_done[s];
    log_[s] = ck.config.at("log").at(kStageNames[s]);
    stage_secs_[s] = ck.config.at("stage_seconds").at(kStageNames[s]).as_number();
  }
  st_.noise_offset = train_on_[3] ? fresh_offset : saved.noise_offset;
  m_->noise_generator().set_state(m_->noise_generator().seed(), st_.noise_offset);
  std::printf("[%s] --stages %s: untrained stages' weights from %s\n", cls_.c_str(), cfg_.stages.c_str(),
              ckpt_.c_str());
}

void ClassRun::save(const nn::Optimizer* opt, const nn::Json* calibration) {
  st_.noise_offset = m_->noise_generator().offset();
  nn::Json c = nn::Json::object();
  c.set("app", nn::Json("train_twostage"));
  c.set("class", nn::Json(cls_));
  c.set("config", config_json(cfg_));
  c.set("model", model_json_);
  c.set("state", state_json(st_));
  nn::Json log = nn::Json::object(), secs = nn::Json::object();
  for (int s = 1; s <= 3; ++s) {
    log.set(kStageNames[s], log_[s]);
    secs.set(kStageNames[s], nn::Json(stage_secs_[s]));
  }
  c.set("log", std::move(log));
  c.set("stage_seconds", std::move(secs));
  if (calibration) c.set("calibration", *calibration);
  nn::save_checkpoint(ckpt_, m_->state_dict(), opt ? opt->state_dict() : nn::StateDict{},
                      opt ? opt->type_name() : std::string(), c);
}

// The held-out (calibration) normals after an epoch of stage s: what epochs
// and hyperparameters may be chosen by, never the test labels.
nn::Json ClassRun::heldout(int s) {
  RECON_RANGE("heldout");
  NoGradGuard ng;
  set_modes(*m_, 0);
  double n = 0, a = 0, b = 0, c = 0, d = 0;
  // Whole images, or in tile mode the windows that scoring will see.
  for_each_unit_batch(data_.split.calibration, 256, [&](const UnitBatch& batch) {
    const Tensor& x = batch.x;
    const double k = (double)x.size(0);
    if (s == 1) {
      models::RotationLoss l = models::rotation_loss(*m_->rotnet, x);
      a += k * l.loss.item();
      b += k * models::rotation_accuracy(l.logits, l.labels);
    } else {
      models::TwoStageAE::Loss l = m_->ae->loss(x);
      a += k * l.loss.item();
      b += k * mse_loss(l.x_hat, x).item();
      if (s == 3) {
        models::Refiner::Output o = m_->refiner->forward(x, l.x_hat, false);
        c += k * mse_loss(o.x_tilde, x).item();
        d += k * models::Refiner::rate(o);
      }
    }
    n += k;
  });
  nn::Json j = nn::Json::object();
  if (s == 1) {
    j.set("heldout_rotation_loss", nn::Json(a / n));
    j.set("heldout_rotation_accuracy", nn::Json(b / n));
    std::printf("  held-out normals: rotation accuracy %.4f, cross-entropy %.4f\n", b / n, a / n);
  } else if (s == 2) {
    j.set("heldout_loss", nn::Json(a / n));
    j.set("heldout_mse_x_hat", nn::Json(b / n));
    std::printf("  held-out normals: loss %.5f, MSE(x_hat) %.5f\n", a / n, b / n);
  } else {
    j.set("heldout_mse_x_hat", nn::Json(b / n));
    j.set("heldout_mse_x_tilde", nn::Json(c / n));
    j.set("heldout_rate_nats", nn::Json(d / n));
    std::printf("  held-out normals: rate %.2f nats/image, MSE x_hat %.5f -> x_tilde %.5f\n", d / n, b / n, c / n);
  }
  std::fflush(stdout);
  return j;
}

void ClassRun::train_stage(int s) {
  const int epochs = stage_epochs(cfg_, s);
  if (st_.epochs_done[s] >= epochs) return;
  RECON_RANGE(kStageNames[s]);
  nn::AdamOptions ao;
  ao.lr = stage_lr(cfg_, s);
  nn::Adam opt(stage_parameters(*m_, s), ao);
  if (st_.running_stage == s && (st_.epochs_done[s] > 0 || st_.steps_in_epoch > 0)) {
    nn::Checkpoint ck = read_own_checkpoint();
    RECON_CHECK(ck.optimizer_type == opt.type_name(),
                "checkpoint " << ckpt_ << ": optimizer " << ck.optimizer_type << ", expected " << opt.type_name());
    opt.load_state_dict(ck.optimizer);
  } else {
    st_.steps_in_epoch = 0;
  }
  st_.running_stage = s;
  // The loader's order depends only on (seed, epoch); each stage its own stream.
  data::LoaderOptions lo = loader_options(cfg_.batch_size, true, cfg_.seed * 4 + (uint64_t)s);
  lo.transform = train_transform_;
  lo.drop_last = train_set_->size() > (size_t)cfg_.batch_size;  // no tiny last batch for BatchNorm
  data::DataLoader loader(train_set_, lo);
  // The step: the library's objective of stage s inside nn::training_step.
  // With --cuda-graphs on and a CUDA device it runs eagerly once, then is
  // captured into a CUDA graph and replayed; otherwise every step is eager.
  // Per-step host work (held-out, checkpoints, modes) stays outside it.
  CudaGraphOptions go;
  go.enabled = cfg_.cuda_graphs == "on" && device_.is_cuda();
  // Stage 1's rotation labels, made once: every batch holds
  // min(batch size, training samples) images (drop_last above).
  const Tensor rot_labels =
      s == 1 ? models::rotation_labels(std::min<int64_t>(cfg_.batch_size, (int64_t)train_set_->size()), device_)
             : Tensor();
  Tensor logits;  // stage 1 without graphs: the step's logits, for the rotation accuracy shown beside the loss
  CudaGraphStep step(nn::training_step(opt,
                                       [&, s](const std::vector<Tensor>& in) {
                                         return models::twostage_step_outputs(*m_->ae, *m_->refiner, s, in[0],
                                                                              rot_labels,
                                                                              go.enabled ? nullptr : &logits);
                                       }),
                     go);
  std::printf("[%s] stage %d (%s): epochs %d-%d of %d, Adam lr %g", cls_.c_str(), s, kStageNames[s],
              st_.epochs_done[s] + 1, epochs, epochs, (double)ao.lr);
  if (s == 2) std::printf(", lambda %g", (double)cfg_.ssim_weight);
  if (s == 3) std::printf(", beta %g", (double)cfg_.beta);
  if (go.enabled) std::printf(", CUDA graphs");
  std::printf("\n");
  std::fflush(stdout);
  for (int epoch = st_.epochs_done[s]; epoch < epochs; ++epoch) {
    const auto t_epoch = std::chrono::steady_clock::now();
    set_modes(*m_, s);
    loader.start_epoch(epoch);
    const int64_t skip = st_.steps_in_epoch;
    const int64_t total = (int64_t)loader.num_batches() * cfg_.batch_size;
    apps::Progress bar(std::string(kStageNames[s]) + " " + std::to_string(epoch + 1) + "/" + std::to_string(epochs),
                       std::min<int64_t>(total, (int64_t)train_set_->size()));
    double loss_sum = 0;
    std::vector<double> extra_sum;
    int64_t seen = 0, trained = 0, step_i = 0;
    // A step is accounted (loss sums, NaN check, progress) one step late,
    // from its outputs read while the next step runs on the device; the last
    // one before the epoch ends or an interruption saves.
    struct Pending {
      int64_t id, images, seen, number;  // the step's id in `step`, its batch size, images seen, step in the epoch
      float acc;                         // stage 1 without graphs: rotation accuracy; else unused
    };
    std::optional<Pending> pending;
    auto account = [&] {
      if (!pending) return;
      const std::vector<float> out = step.outputs(pending->id);
      const float l = out[0];
      RECON_CHECK(std::isfinite(l), "stage " << s << " (" << kStageNames[s] << "), epoch " << epoch + 1 << ", step "
                                             << pending->number << ": the loss became " << l
                                             << "; stopped without saving, the last good checkpoint is " << ckpt_
                                             << " (lower the learning rate, e.g. --lr-" << kStageNames[s] << ")");
      std::vector<std::pair<const char*, float>> extra;  // shown beside the loss
      if (s == 1 && !go.enabled) extra.push_back({"acc", pending->acc});
      if (s == 3) extra = {{"sse", out[1]}, {"kl", out[2]}};
      const double k = (double)pending->images;
      trained += pending->images;
      loss_sum += k * l;
      extra_sum.resize(extra.size(), 0.0);
      char buf[64];
      std::snprintf(buf, sizeof buf, "loss %.5f", loss_sum / (double)trained);
      std::string status = buf;
      for (size_t i = 0; i < extra.size(); ++i) {
        extra_sum[i] += k * extra[i].second;
        std::snprintf(buf, sizeof buf, " %s %.4g", extra[i].first, extra_sum[i] / (double)trained);
        status += buf;
      }
      bar.update(pending->seen, status);
      pending.reset();
    };
    while (auto batch = loader.next()) {
      if (step_i < skip) {  // done before the interruption: same batches, same order
        ++step_i;
        seen += batch->size();
        continue;
      }
      const int64_t id = step.run({batch->images});
      const float acc = logits.defined() ? models::rotation_accuracy(logits, rot_labels) : 0.f;
      logits = Tensor();
      account();  // the previous step
      ++step_i;
      ++*steps_run_;
      seen += batch->size();
      pending = Pending{id, batch->size(), seen, step_i, acc};
      if (cfg_.stop_after_steps > 0 && *steps_run_ == cfg_.stop_after_steps) g_interrupt = 1;
      if (g_interrupt) {
        account();
        bar.finish();
        st_.steps_in_epoch = step_i;
        save(&opt);
        std::printf("\n[%s] interrupted in stage %d (%s), epoch %d, after step %lld: saved %s; continue with "
                    "--resume\n",
                    cls_.c_str(), s, kStageNames[s], epoch + 1, (long long)step_i, ckpt_.c_str());
        std::fflush(stdout);
        throw Interrupted{};
      }
    }
    account();
    bar.finish();
    st_.epochs_done[s] = epoch + 1;
    st_.steps_in_epoch = 0;
    nn::Json e = heldout(s);
    e.set("epoch", nn::Json(epoch + 1));
    if (trained > 0) e.set("train_loss", nn::Json(loss_sum / (double)trained));
    e.set("seconds", nn::Json(bar.seconds()));
    e.set("images_per_second", nn::Json(bar.seconds() > 0 ? (double)trained / bar.seconds() : 0.0));
    log_[s].push_back(std::move(e));
    stage_secs_[s] += std::chrono::duration<double>(std::chrono::steady_clock::now() - t_epoch).count();
    save(&opt);
    ++*epochs_run_;
    if (cfg_.stop_after > 0 && *epochs_run_ == cfg_.stop_after) {
      std::printf("[%s] --stop-after %d: stopped after stage %d epoch %d; saved %s\n", cls_.c_str(), cfg_.stop_after,
                  s, epoch + 1, ckpt_.c_str());
      throw StoppedForTest{};
    }
  }
}

// ---- scoring ---------------------------------------------------------------------------

std::vector<float> as_float(const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); }

// The errors of every scoring unit (an image, or a window in tile mode).
struct Measured {
  models::ViewErrors hat, tilde;  // views mse, ssim, feature, rotation; one column per unit
  std::vector<float> d;           // difficulty of each unit
  std::vector<size_t> image;      // the image of each unit
  std::vector<int> labels;        // per image
};

// Image scores from unit scores: the highest unit score of each of n images
// (a window's in tile mode, as eval::score_images takes; the unit's own for
// whole images).
template <class T>
std::vector<double> image_max(const std::vector<T>& unit, const std::vector<size_t>& image, size_t n) {
  RECON_CHECK(unit.size() == image.size(), "image_max: " << unit.size() << " scores for " << image.size() << " units");
  std::vector<double> out(n, -HUGE_VAL);
  for (size_t k = 0; k < unit.size(); ++k) out[image[k]] = std::max(out[image[k]], (double)unit[k]);
  for (size_t i = 0; i < n; ++i) RECON_CHECK(std::isfinite(out[i]), "image_max: image " << i << " has no finite unit score");
  return out;
}

// Image i of a (N, C, H, W) host tensor's values `v`.
data::Image unit_image(const std::vector<float>& v, int64_t i, int c, int h, int w) {
  data::Image im(c, h, w, 0.f);
  const size_t n = (size_t)c * h * w;
  std::copy(v.begin() + (ptrdiff_t)(i * (int64_t)n), v.begin() + (ptrdiff_t)((i + 1) * (int64_t)n), im.pixels.begin());
  return im;
}

nn::Json ClassRun::score() {
  RECON_RANGE("score");
  const auto t0 = std::chrono::steady_clock::now();
  NoGradGuard ng;
  set_modes(*m_, 0);
  models::ScorerOptions so;
  so.measure = models::parse_difficulty_measure(cfg_.difficulty);
  so.normalization = models::parse_normalization(cfg_.normalization);
  models::RotNet& rot = *m_->rotnet;
  const models::FeatureFn phi = [&rot](const Tensor& x) { return rot.features(x); };
  // x_hat: the three reconstruction views plus the rotation score as an
  // extra view; x_tilde reuses the rotation row (it depends on x alone).
  models::MultiViewScorer scorer(phi, so);
  scorer.add_view(kViewRotation, [&rot](const Tensor& x, const Tensor&) {
    return models::rotation_scores(rot, x).to_vector();
  });
  const models::MultiViewScorer base(phi, so);
  auto measure = [&](const data::DatasetPtr& ds, const char* label) {
    Measured r;
    apps::Progress bar(label, (int64_t)ds->size());
    for_each_unit_batch(ds, 256, [&](const UnitBatch& batch) {
      if (g_interrupt) throw Interrupted{};
      const Tensor& x = batch.x;
      const Tensor x_hat = m_->ae->forward(x);
      const Tensor x_tilde = m_->refiner->forward(x, x_hat, false).x_tilde;
      models::ViewErrors eh = scorer.errors(x, x_hat);
      models::ViewErrors et = base.errors(x, x_tilde);
      et.views.push_back(kViewRotation);
      et.error.push_back(eh.view(kViewRotation));
      r.hat.append(eh);
      r.tilde.append(et);
      const std::vector<float> d = scorer.difficulty(x);
      r.d.insert(r.d.end(), d.begin(), d.end());
      r.image.insert(r.image.end(), batch.image.begin(), batch.image.end());
      bar.update((int64_t)batch.image.back() + 1, "");
    });
    bar.finish();
    for (size_t i = 0; i < ds->size(); ++i) r.labels.push_back(ds->label(i));
    return r;
  };
  const Measured cal = measure(data_.split.calibration, "score calibration");
  const Measured test = measure(data_.split.test, "score test");

  const std::vector<std::string>& views = scorer.view_names();
  const std::vector<double> w_all(views.size(), 1.0);
  std::vector<double> w_recon(views.size(), 1.0);
  w_recon.back() = 0.0;  // the rotation view
  const models::Calibration cal_hat = models::fit_calibration(cal.hat, cal.d, so.measure, so.normalization, w_all);
  models::Calibration cal_tilde = models::fit_calibration(cal.tilde, cal.d, so.measure, so.normalization, w_all);
  // The z-scores come from the calibration units (windows in tile mode); the
  // decision threshold of the final checkpoint (recon_eval, recon_predict) is
  // a quantile of the calibration normals' fused x_tilde image scores.
  const size_t n_cal = data_.split.calibration->size(), n_test = data_.split.test->size();
  const std::string threshold_warning = models::fit_threshold_quantile(
      cal_tilde, image_max(models::apply_calibration(cal_tilde, cal.tilde, cal.d).fused, cal.image, n_cal),
      cfg_.threshold_quantile);
  if (!threshold_warning.empty()) std::printf("[%s] warning: %s\n", cls_.c_str(), threshold_warning.c_str());

  nn::Json result = nn::Json::object();
  nn::Json auroc = nn::Json::object();
  std::vector<double> test_scores;  // the fused x_tilde image scores (what recon_eval reports)
  std::map<std::string, std::array<double, 2>> table;  // row -> (x_hat, x_tilde)
  for (int col = 0; col < 2; ++col) {
    const char* name = col == 0 ? "x_hat" : "x_tilde";
    const models::Calibration* c = col == 0 ? &cal_hat : &cal_tilde;
    const models::ViewErrors& errs = col == 0 ? test.hat : test.tilde;
    const models::Scores sc = models::apply_calibration(*c, errs, test.d);
    nn::Json j = nn::Json::object();
    for (size_t v = 0; v < sc.views.size(); ++v) {
      const double a = eval::auroc(as_float(image_max(sc.z[v], test.image, n_test)), test.labels);
      j.set(sc.views[v], nn::Json(a));
      table[sc.views[v]][col] = a;
    }
    const std::vector<double> fused_images = image_max(sc.fused, test.image, n_test);
    const double fused = eval::auroc(as_float(fused_images), test.labels);
    if (col == 1) test_scores = fused_images;
    models::Calibration c3 = *c;
    for (size_t v = 0; v < c3.views.size(); ++v) c3.views[v].weight = w_recon[v];
    const double fused3 = eval::auroc(
        as_float(image_max(models::apply_calibration(c3, errs, test.d).fused, test.image, n_test)), test.labels);
    const double raw_mse = eval::auroc(as_float(image_max(errs.view(models::kViewMse), test.image, n_test)),
                                       test.labels);
    j.set("fused", nn::Json(fused));
    j.set("fused_recon", nn::Json(fused3));
    j.set("mse_raw", nn::Json(raw_mse));
    table["fused"][col] = fused;
    table["fused_recon"][col] = fused3;
    table["mse_raw"][col] = raw_mse;
    auroc.set(name, std::move(j));
  }
  result.set("image_auroc", std::move(auroc));
  const double d_auroc = eval::auroc(as_float(image_max(test.d, test.image, n_test)), test.labels);
  result.set("difficulty_auroc", nn::Json(d_auroc));
  nn::Json calm = nn::Json::object();
  for (size_t v = 0; v < views.size(); ++v) {
    double sh = 0, stl = 0;
    for (float e : cal.hat.error[v]) sh += e;
    for (float e : cal.tilde.error[v]) stl += e;
    nn::Json p = nn::Json::object();
    p.set("x_hat", nn::Json(sh / (double)cal.hat.num_images()));
    p.set("x_tilde", nn::Json(stl / (double)cal.tilde.num_images()));
    calm.set(views[v], std::move(p));
  }
  result.set("calibration_mean_error", std::move(calm));

  std::printf("\n[%s] image AUROC (difficulty %s, %s normalisation, z-scores from %lld %s of %zu held-out normals)\n",
              cls_.c_str(), cfg_.difficulty.c_str(), cfg_.normalization.c_str(), (long long)cal_tilde.num_images,
              cfg_.train_tile > 0 ? "windows" : "images", n_cal);
  std::printf("  %-26s %9s %9s\n", "view", "x_hat", "x_tilde");
  const std::vector<std::pair<std::string, std::string>> rows = {
      {"mse_raw", "mse (raw, no calibration)"}, {models::kViewMse, "mse"}, {models::kViewSsim, "ssim"},
      {models::kViewFeature, "feature"},        {kViewRotation, "rotation (x only)"},
      {"fused_recon", "fused mse+ssim+feature"}, {"fused", "fused, all four"}};
  for (const auto& [key, label] : rows)
    std::printf("  %-26s %9.4f %9.4f\n", label.c_str(), table[key][0], table[key][1]);
  std::printf("  (the difficulty measure alone: %.4f)\n", d_auroc);

  // Pixel maps need the calibration's scale: a second pass over the test set.
  // In tile mode the window maps of an image are stitched (averaged where
  // windows overlap, eval::TileStitcher, as recon_eval does); maps of an
  // image whose size differs from the first test image's (PIPED has one
  // 128x127 image) are resized to it for the pooled pixel metrics, the map
  // bilinearly, the mask by nearest neighbour.
  if (data_.has_masks) {
    std::vector<float> mh, mt, mk;
    int map_h = 0, map_w = 0, resized = 0;
    size_t cur = SIZE_MAX;  // the image being stitched
    std::optional<eval::TileStitcher> sh, st, sm;
    auto finish_image = [&] {
      if (cur == SIZE_MAX) return;
      data::Image im[3] = {sh->result(), st->result(), sm->result()};
      RECON_CHECK(sh->uncovered() == 0, "pixel maps: " << sh->uncovered() << " pixels of test image " << cur
                                                       << " are in no window");
      if (map_h == 0) {
        map_h = im[0].height;
        map_w = im[0].width;
      }
      if (im[0].height != map_h || im[0].width != map_w) {
        ++resized;
        for (int k = 0; k < 3; ++k)
          im[k] = data::resize(im[k], map_h, map_w, k < 2 ? data::ResizeMode::Bilinear : data::ResizeMode::Nearest);
      }
      mh.insert(mh.end(), im[0].pixels.begin(), im[0].pixels.end());
      mt.insert(mt.end(), im[1].pixels.begin(), im[1].pixels.end());
      mk.insert(mk.end(), im[2].pixels.begin(), im[2].pixels.end());
    };
    apps::Progress bar("pixel maps", (int64_t)n_test);
    for_each_unit_batch(data_.split.test, 64, [&](const UnitBatch& batch) {
      if (g_interrupt) throw Interrupted{};
      const Tensor& x = batch.x;
      const Tensor x_hat = m_->ae->forward(x);
      const Tensor x_tilde = m_->refiner->forward(x, x_hat, false).x_tilde;
      scorer.set_calibration(cal_hat);
      const std::vector<float> ph = scorer.pixel_map(x, x_hat).to_vector();
      scorer.set_calibration(cal_tilde);
      const std::vector<float> pt = scorer.pixel_map(x, x_tilde).to_vector();
      const std::vector<float> pm = batch.masks.to_vector();
      const int sz_h = (int)x.size(2), sz_w = (int)x.size(3);
      for (size_t k = 0; k < batch.image.size(); ++k) {
        if (batch.image[k] != cur) {
          finish_image();
          cur = batch.image[k];
          sh.emplace(1, batch.height[k], batch.width[k]);
          st.emplace(1, batch.height[k], batch.width[k]);
          sm.emplace(1, batch.height[k], batch.width[k]);
        }
        sh->add(unit_image(ph, (int64_t)k, 1, sz_h, sz_w), batch.top[k], batch.left[k]);
        st->add(unit_image(pt, (int64_t)k, 1, sz_h, sz_w), batch.top[k], batch.left[k]);
        sm->add(unit_image(pm, (int64_t)k, 1, sz_h, sz_w), batch.top[k], batch.left[k]);
      }
      bar.update((int64_t)batch.image.back() + 1, "");
    });
    finish_image();
    bar.finish();
    const Shape shape{(int64_t)n_test, 1, map_h, map_w};
    const Tensor masks = Tensor::from_vector(mk, shape);
    nn::Json px = nn::Json::object();
    std::printf("  %-26s %9s %9s\n", "pixel metric", "x_hat", "x_tilde");
    double pa[2], pro[2];
    for (int i = 0; i < 2; ++i) {
      const Tensor maps = Tensor::from_vector(i == 0 ? mh : mt, shape);
      pa[i] = eval::pixel_auroc(maps, masks);
      pro[i] = eval::aupro(maps, masks);
      nn::Json p = nn::Json::object();
      p.set("pixel_auroc", nn::Json(pa[i]));
      p.set("aupro", nn::Json(pro[i]));
      px.set(i == 0 ? "x_hat" : "x_tilde", std::move(p));
    }
    std::printf("  %-26s %9.4f %9.4f\n  %-26s %9.4f %9.4f\n", "pixel AUROC", pa[0], pa[1], "AUPRO (FPR <= 0.3)",
                pro[0], pro[1]);
    if (resized > 0) {
      px.set("resized_maps", nn::Json(resized));
      std::printf("  (%d test image(s) of another size: maps resized to %dx%d for the pixel metrics)\n", resized,
                  map_h, map_w);
    }
    result.set("pixel", std::move(px));
  }
  nn::Json scoring = nn::Json::object();
  scoring.set("mode", nn::Json(cfg_.train_tile > 0 ? "tile" : "image"));
  scoring.set("tile", nn::Json(cfg_.train_tile));
  scoring.set("stride", nn::Json(cfg_.train_tile > 0 ? tile_stride(cfg_.train_tile) : 0));
  scoring.set("calibration_units", nn::Json((int64_t)cal.image.size()));
  scoring.set("test_units", nn::Json((int64_t)test.image.size()));
  result.set("scoring", std::move(scoring));
  // Every test image's fused x_tilde score, beside result.json (not in it:
  // Fashion-MNIST has 10000 test images per class).
  {
    nn::Json per = nn::Json::array();
    for (size_t i = 0; i < n_test; ++i) {
      nn::Json j = nn::Json::object();
      j.set("source", nn::Json(data_.split.test->source(i)));
      j.set("label", nn::Json(test.labels[i]));
      j.set("score", nn::Json(test_scores[i]));
      per.push_back(std::move(j));
    }
    const fs::path p = out_dir_ / "test_scores.json";
    std::ofstream f(p);
    f << per.dump(1) << "\n";
    RECON_CHECK(f.good(), "train_twostage: could not write " << p.string());
  }
  result.set("calibration", cal_tilde.to_json());
  result.set("calibration_x_hat", cal_hat.to_json());
  result.set("score_seconds", nn::Json(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()));
  std::fflush(stdout);
  return result;
}

nn::Json ClassRun::run() {
  fs::create_directories(out_dir_);
  ckpt_ = (out_dir_ / "checkpoint.safetensors").string();
  build();
  prepare_state();
  for (int s = 1; s <= 3; ++s)
    if (train_on_[s]) train_stage(s);
  nn::Json sc = nn::Json::object();
  if (!cfg_.no_score) {
    for (int s = 1; s <= 3; ++s)
      RECON_CHECK(st_.epochs_done[s] > 0, "scoring needs every stage, but stage "
                                              << s << " (" << kStageNames[s] << ") has no trained epoch in " << ckpt_
                                              << "; include it in --stages (or pass --no-score)");
    sc = score();
    // The final checkpoint: every weight, no optimizer, the calibration of
    // x_tilde (the method's output) with its threshold, for later scoring
    // (recon_eval, recon_predict: eval/detector).
    st_.running_stage = 0;
    st_.steps_in_epoch = 0;
    const nn::Json calib = sc.at("calibration");
    save(nullptr, &calib);
  }

  nn::Json r = nn::Json::object();
  r.set("class", nn::Json(cls_));
  r.set("data", nn::Json(data_.description));
  r.set("num_train", nn::Json((int64_t)data_.split.train->size()));
  r.set("num_calibration", nn::Json((int64_t)data_.split.calibration->size()));
  r.set("num_test", nn::Json((int64_t)data_.split.test->size()));
  r.set("model", model_json_);
  nn::Json log = nn::Json::object();
  for (int s = 1; s <= 3; ++s) log.set(kStageNames[s], log_[s]);
  r.set("training", std::move(log));
  nn::Json secs = nn::Json::object();
  for (int s = 1; s <= 3; ++s) secs.set(kStageNames[s], nn::Json(stage_secs_[s]));
  r.set("stage_seconds", std::move(secs));
  for (auto& [k, v] : sc.as_object()) r.set(k, v);
  r.set("checkpoint", nn::Json(ckpt_));
  std::ofstream(out_dir_ / "result.json") << r.dump(2) << "\n";
  return r;
}

// --device auto with CUDA present: one tiny step of every stage and one
// scoring pass on the device. Empty when all ran, else why not.
std::string probe_cuda(const Config& cfg, Device device) {
  try {
    models::RotNetConfig rc;
    rc.height = rc.width = 16;
    rc.base_width = 4;
    models::RefinerConfig fc;
    fc.height = fc.width = 16;
    fc.base_width = 4;
    Method2 m(rc, {}, fc, cfg.seed);
    m.to(device);
    Generator g(1);
    const Tensor x = Tensor::uniform({2, 1, 16, 16}, g).to(device);
    for (int s = 1; s <= 3; ++s) {
      set_modes(m, s);
      nn::Adam opt(stage_parameters(m, s));
      Tensor loss = models::twostage_step_outputs(*m.ae, *m.refiner, s, x, models::rotation_labels(2, device))[0];
      loss.backward();
      opt.step();
    }
    set_modes(m, 0);
    NoGradGuard ng;
    models::MultiViewScorer scorer([&m](const Tensor& t) { return m.rotnet->features(t); });
    const Tensor x_hat = m.refiner->forward(x, m.ae->forward(x), false).x_tilde;
    (void)scorer.errors(x, x_hat);
    (void)scorer.pixel_map(x, x_hat);
    (void)scorer.difficulty(x);
    (void)models::rotation_scores(*m.rotnet, x);
    return "";
  } catch (const Error& e) {
    const std::string what = e.what();
    if (what.find("not implemented on CUDA") == std::string::npos) throw;
    return what;
  }
}

int run(Config cfg) {
  const auto t0 = std::chrono::steady_clock::now();
  apps::check_data_kind(cfg.data);
  // PIPED: the root as an absolute path in run.json and the checkpoint, so
  // recon_eval finds the test set from any working directory.
  if (cfg.data.kind == "piped")
    cfg.data.path = fs::absolute(apps::resolve_piped_root(cfg.data.path.empty() ? apps::kPipedDefaultDir
                                                                                 : cfg.data.path))
                        .lexically_normal()
                        .string();
  RECON_CHECK(cfg.train_tile >= 0 && cfg.tiles_per_epoch >= 0, "--train-tile and --tiles-per-epoch must be >= 0");
  RECON_CHECK(cfg.train_tile == 0 || cfg.data.image_size == 0,
              "--train-tile trains on windows at native resolution; it cannot be combined with --image-size");
  RECON_CHECK(cfg.tiles_per_epoch == 0 || cfg.train_tile > 0, "--tiles-per-epoch needs --train-tile");
  (void)parse_stages(cfg.stages);
  (void)models::parse_difficulty_measure(cfg.difficulty);
  (void)models::parse_normalization(cfg.normalization);
  RECON_CHECK(cfg.batch_size > 0, "--batch-size must be positive");
  RECON_CHECK(cfg.epochs_rotnet >= 0 && cfg.epochs_decoder >= 0 && cfg.epochs_refiner >= 0, "epochs must be >= 0");
  RECON_CHECK(cfg.beta >= 0, "--beta must be >= 0");
  RECON_CHECK(cfg.threshold_quantile > 0 && cfg.threshold_quantile <= 1,
              "--threshold-quantile must lie in (0, 1], got " << cfg.threshold_quantile);
  RECON_CHECK(cfg.decoder_code >= 0, "--decoder-code must be >= 0 (0: no bottleneck)");
  RECON_CHECK(cfg.cuda_graphs == "on" || cfg.cuda_graphs == "off",
              "--cuda-graphs must be on or off, got '" << cfg.cuda_graphs << "'");
  Device device = parse_device(cfg.device);
  if (cfg.device == "auto" && device.is_cuda()) {
    const std::string why = probe_cuda(cfg, device);
    if (!why.empty()) {
      std::printf("train_twostage: --device auto: an op this app needs has no CUDA kernel (%s); running on the "
                  "CPU\n",
                  why.c_str());
      device = Device::cpu();
    }
  }
  std::printf("train_twostage: dataset %s, device %s, epochs rotnet %d / decoder %d / refiner %d, batch %d, "
              "lambda %g, decoder code %d, beta %g, seed %llu, out %s\n",
              cfg.data.kind.c_str(), device.str().c_str(), cfg.epochs_rotnet, cfg.epochs_decoder, cfg.epochs_refiner,
              cfg.batch_size, cfg.ssim_weight, cfg.decoder_code, cfg.beta, (unsigned long long)cfg.seed, cfg.out.c_str());
  std::fflush(stdout);

  std::vector<std::string> classes;
  if (cfg.all_classes)
    classes = apps::list_anomaly_classes(cfg.data);
  else if (apps::is_idx_kind(cfg.data))
    classes = {std::to_string(cfg.normal_class)};
  else
    classes = {cfg.data.kind == "mvtec" || cfg.data.kind == "piped" ? cfg.data.category
                                                                     : std::string("folder")};  // folder: a name for messages
  fs::create_directories(cfg.out);
  const fs::path run_json = fs::path(cfg.out) / "run.json";
  nn::Json results = nn::Json::array();
  int epochs_run = 0;
  int64_t steps_run = 0;
  int code = 0;
  try {
    for (const std::string& cls : classes) {
      const fs::path dir = cfg.all_classes ? fs::path(cfg.out) / ("class_" + cls) : fs::path(cfg.out);
      const fs::path done = dir / "result.json";
      if (cfg.all_classes && cfg.resume && fs::exists(done)) {
        std::ifstream f(done);
        std::stringstream ss;
        ss << f.rdbuf();
        results.push_back(nn::Json::parse(ss.str()));
        std::printf("[%s] --resume: already finished (%s)\n", cls.c_str(), done.c_str());
        continue;
      }
      ClassRun cr(cfg, device, cls, dir, &epochs_run, &steps_run);
      results.push_back(cr.run());
    }
  } catch (const Interrupted&) {
    code = kExitInterrupted;
  } catch (const StoppedForTest&) {
    code = 0;
  }
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  nn::Json run = nn::Json::object();
  run.set("app", nn::Json("train_twostage"));
  run.set("config", config_json(cfg));
  run.set("device", nn::Json(device.str()));
  run.set("complete", nn::Json(results.size() == classes.size()));
  run.set("classes", results);
  if (results.size() > 1 && !cfg.no_score) {
    nn::Json mean = nn::Json::object();
    std::printf("\nimage AUROC per class (fused score)\n  %-14s %9s %9s %9s %9s %9s\n", "class", "rot.acc",
                "x_hat", "x_tilde", "rotation", "mse x~");
    double sum[5] = {0, 0, 0, 0, 0};
    for (const nn::Json& r : results.as_array()) {
      const nn::Json& rot = r.at("training").at("rotnet").as_array().back();
      const nn::Json& a = r.at("image_auroc");
      const double v[5] = {rot.at("heldout_rotation_accuracy").as_number(), a.at("x_hat").at("fused").as_number(),
                           a.at("x_tilde").at("fused").as_number(), a.at("x_tilde").at(kViewRotation).as_number(),
                           a.at("x_tilde").at(models::kViewMse).as_number()};
      std::printf("  %-14s %9.4f %9.4f %9.4f %9.4f %9.4f\n", r.at("class").as_string().c_str(), v[0], v[1], v[2],
                  v[3], v[4]);
      for (int i = 0; i < 5; ++i) sum[i] += v[i];
    }
    const double n = (double)results.size();
    std::printf("  %-14s %9.4f %9.4f %9.4f %9.4f %9.4f\n", "mean", sum[0] / n, sum[1] / n, sum[2] / n, sum[3] / n,
                sum[4] / n);
    const char* keys[5] = {"heldout_rotation_accuracy", "fused_x_hat", "fused_x_tilde", "rotation", "mse_x_tilde"};
    for (int i = 0; i < 5; ++i) mean.set(keys[i], nn::Json(sum[i] / n));
    run.set("mean", std::move(mean));
  }
  nn::Json timings = nn::Json::object();
  timings.set("total_seconds", nn::Json(total));
  run.set("timings", std::move(timings));
  {
    std::ofstream f(run_json);
    f << run.dump(2) << "\n";
    RECON_CHECK(f.good(), "train_twostage: could not write " << run_json.string());
  }
  std::printf("\ntrain_twostage: %s in %.1f s; wrote %s\n",
              code == kExitInterrupted ? "interrupted" : results.size() == classes.size() ? "done" : "stopped", total,
              run_json.c_str());
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  apps::Cli cli("train_twostage",
                "Method 2: trains a RotNet on the rotations of normal images (stage 1), a decoder on its frozen "
                "encoder (stage 2) and a variational refiner (stage 3); calibrates the multi-view score (mse, ssim, "
                "feature, rotation) on held-out normals and prints the image AUROC of x_hat and x_tilde per view. "
                "With no flags: Fashion-MNIST, normal class 0, on the CPU in minutes. Checkpoints after every epoch; "
                "Ctrl-C saves and exits 130; --resume continues bitwise-identically.");
  apps::add_data_flags(cli, cfg.data, cfg.normal_class, "<stem>_mask or <stem>", "; RotNet needs square images");
  cli.add_switch("--all-classes", cfg.all_classes,
                 "the one-class protocol over every class (IDX: 0-9; MVTec: every category; PIPED: its 12 classes), "
                 "each in <out>/class_<c>, ending in a table of per-class AUROCs and the mean");
  cli.add("--train-tile", cfg.train_tile,
          "random-tile training: every sample is a random N x N window at native resolution of a random training "
          "normal (memory bounded by the batch of windows, whatever the image size); calibration and test images "
          "are scored in tile mode (windows N/2 apart, image score = highest window score, maps stitched), and "
          "the checkpoint stores N as recon_eval's and recon_predict's default --tile; 0: whole images");
  cli.add("--tiles-per-epoch", cfg.tiles_per_epoch,
          "random-tile training: windows per epoch (0: as many as cover the training images once, "
          "n_train * ceil(H W / N^2))");
  cli.add("--epochs-rotnet", cfg.epochs_rotnet, "stage 1 epochs");
  cli.add("--epochs-decoder", cfg.epochs_decoder, "stage 2 epochs");
  cli.add("--epochs-refiner", cfg.epochs_refiner, "stage 3 epochs");
  cli.add("--batch-size", cfg.batch_size, "images per step (stage 1 trains on 4x as many rotated copies)");
  cli.add("--lr-rotnet", cfg.lr_rotnet, "stage 1 Adam learning rate");
  cli.add("--lr-decoder", cfg.lr_decoder, "stage 2 Adam learning rate");
  cli.add("--lr-refiner", cfg.lr_refiner, "stage 3 Adam learning rate");
  cli.add("--ssim-weight", cfg.ssim_weight, "lambda: stage 2 loss = MSE + lambda (1 - SSIM)");
  cli.add("--decoder-code", cfg.decoder_code,
          "stage 2 bottleneck: the decoder squeezes the frozen features (e.g. 64x7x7 = 3136 numbers) to this many "
          "numbers per image (Linear) before decoding; 0: no bottleneck (the decoder can learn to copy)");
  cli.add("--beta", cfg.beta,
          "stage 3 KL weight: loss = per-image sum of squared errors + beta * KL (nats per image); larger passes "
          "less information");
  cli.add("--width", cfg.width, "RotNet stem channels (doubling per stride-2 stage)");
  cli.add("--max-width", cfg.max_width, "RotNet channel cap");
  cli.add("--target-size", cfg.target_size, "RotNet adds stride-2 stages until the feature map is at most this size");
  cli.add("--refiner-width", cfg.refiner_width, "refiner base channels");
  cli.add("--latent-channels", cfg.latent_channels, "refiner bottleneck channels (spatial latent at 1/4 size)");
  cli.add("--difficulty", cfg.difficulty,
          "difficulty measure of the calibration: entropy, local-entropy, gradient, compression, lowpass");
  cli.add("--normalization", cfg.normalization, "error normalisation by difficulty: none, ratio or residual");
  cli.add("--threshold-quantile", cfg.threshold_quantile,
          "the final checkpoint's decision threshold: this quantile of the calibration normals' fused x_tilde "
          "scores (recon_eval and recon_predict decide with it)");
  cli.add("--seed", cfg.seed, "seed for initialisation, splits, shuffling and the refiner's noise");
  cli.add("--device", cfg.device,
          "auto, cpu or cuda (auto: CUDA when present and every op this app uses has a CUDA kernel, checked "
          "with one tiny step; else the CPU, saying why)");
  cli.add("--cuda-graphs", cfg.cuda_graphs,
          "on or off: capture each stage's training step into a CUDA graph after one eager step and replay it "
          "(same numbers, less launch overhead; the per-step rotation accuracy of stage 1 is then not shown). "
          "Takes effect only when --device resolves to cuda");
  cli.add("--out", cfg.out, "output folder: checkpoint.safetensors (atomic, every epoch), result.json, run.json");
  cli.add("--stages", cfg.stages,
          "stages to train, e.g. 1,2,3 or 3; the others' weights come from <out>/checkpoint.safetensors");
  cli.add_switch("--resume", cfg.resume,
                 "continue from <out>/checkpoint.safetensors (same stage, epoch and step; bitwise-identical result)");
  cli.add_switch("--no-score", cfg.no_score,
                 "train only, no test scoring (sweeps on held-out normals: run.json keeps their per-epoch numbers)");
  cli.add("--stop-after", cfg.stop_after, "for tests: stop (exit 0) after this many epochs, all stages counted; 0: off");
  cli.add("--stop-after-steps", cfg.stop_after_steps,
          "for tests: behave as if Ctrl-C came after this many training steps (save, exit 130); 0: off");
  cli.parse(argc, argv);
  std::signal(SIGINT, on_sigint);
  try {
    return run(cfg);
  } catch (const std::exception& e) {
    const std::string what = e.what();
    std::fprintf(stderr, "train_twostage: error: %s\n", what.c_str());
    if (what.find("not implemented on CUDA") != std::string::npos)
      std::fprintf(stderr, "train_twostage: an op this app needs has no CUDA kernel yet; run with --device cpu "
                           "(or --device auto, which checks first)\n");
    return 1;
  }
}
