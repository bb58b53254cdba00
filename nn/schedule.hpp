// Learning-rate schedules as pure functions of the step (0-based): step decay,
// cosine annealing, and a linear warm-up composed with either. A schedule is
// applied by setting the optimizer's lr before each step:
//   opt.set_lr(schedule.lr_at(opt.step_count()));
#pragma once
#include <cstdint>
#include <memory>

namespace recon::nn {

class LrSchedule {
 public:
  virtual ~LrSchedule() = default;
  virtual double lr_at(int64_t step) const = 0;
};

// PyTorch's StepLR: base * gamma^floor(step / step_size).
class StepSchedule : public LrSchedule {
 public:
  StepSchedule(double base_lr, int64_t step_size, double gamma = 0.1);
  double lr_at(int64_t step) const override;

 private:
  double base_, gamma_;
  int64_t step_size_;
};

// Cosine annealing (Loshchilov & Hutter 2017, SGDR, without restarts):
// min + (base - min) * (1 + cos(pi * min(step, total) / total)) / 2;
// stays at min after `total` steps.
class CosineSchedule : public LrSchedule {
 public:
  CosineSchedule(double base_lr, int64_t total_steps, double min_lr = 0.0);
  double lr_at(int64_t step) const override;

 private:
  double base_, min_;
  int64_t total_;
};

// Linear warm-up over `warmup_steps`, then `after` shifted by the warm-up:
//   step < W: after(0) * (start + (1 - start) * step / W)
//   step >= W: after(step - W)
// start_factor = 0 gives lr 0 at step 0 (as Hugging Face's warm-up).
class WarmupSchedule : public LrSchedule {
 public:
  WarmupSchedule(std::shared_ptr<const LrSchedule> after, int64_t warmup_steps, double start_factor = 0.0);
  double lr_at(int64_t step) const override;

 private:
  std::shared_ptr<const LrSchedule> after_;
  int64_t warmup_;
  double start_;
};

// A constant rate (for warm-up alone).
class ConstantSchedule : public LrSchedule {
 public:
  explicit ConstantSchedule(double lr) : lr_(lr) {}
  double lr_at(int64_t) const override { return lr_; }

 private:
  double lr_;
};

// Warm-up then cosine to min_lr, ending at total_steps (warm-up included).
std::shared_ptr<LrSchedule> warmup_cosine(double base_lr, int64_t warmup_steps, int64_t total_steps,
                                          double min_lr = 0.0);

}  // namespace recon::nn
