// Learning-rate schedule formulas (see schedule.hpp).
#include "nn/schedule.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "runtime/error.hpp"

namespace recon::nn {

StepSchedule::StepSchedule(double base_lr, int64_t step_size, double gamma)
    : base_(base_lr), gamma_(gamma), step_size_(step_size) {
  RECON_CHECK(step_size > 0, "StepSchedule: step_size " << step_size << " must be > 0");
}

double StepSchedule::lr_at(int64_t step) const {
  RECON_CHECK(step >= 0, "StepSchedule: negative step " << step);
  return base_ * std::pow(gamma_, (double)(step / step_size_));
}

CosineSchedule::CosineSchedule(double base_lr, int64_t total_steps, double min_lr)
    : base_(base_lr), min_(min_lr), total_(total_steps) {
  RECON_CHECK(total_steps > 0, "CosineSchedule: total_steps " << total_steps << " must be > 0");
}

double CosineSchedule::lr_at(int64_t step) const {
  RECON_CHECK(step >= 0, "CosineSchedule: negative step " << step);
  const double t = (double)std::min(step, total_) / (double)total_;
  return min_ + (base_ - min_) * (1.0 + std::cos(std::numbers::pi * t)) / 2.0;
}

WarmupSchedule::WarmupSchedule(std::shared_ptr<const LrSchedule> after, int64_t warmup_steps, double start_factor)
    : after_(std::move(after)), warmup_(warmup_steps), start_(start_factor) {
  RECON_CHECK(after_ != nullptr, "WarmupSchedule: no schedule to follow the warm-up");
  RECON_CHECK(warmup_steps >= 0, "WarmupSchedule: warmup_steps " << warmup_steps << " must be >= 0");
  RECON_CHECK(start_factor >= 0.0 && start_factor <= 1.0,
              "WarmupSchedule: start_factor " << start_factor << " must be in [0, 1]");
}

double WarmupSchedule::lr_at(int64_t step) const {
  RECON_CHECK(step >= 0, "WarmupSchedule: negative step " << step);
  if (step >= warmup_) return after_->lr_at(step - warmup_);
  return after_->lr_at(0) * (start_ + (1.0 - start_) * (double)step / (double)warmup_);
}

std::shared_ptr<LrSchedule> warmup_cosine(double base_lr, int64_t warmup_steps, int64_t total_steps, double min_lr) {
  RECON_CHECK(total_steps > warmup_steps, "warmup_cosine: total_steps " << total_steps
                                                                        << " must exceed warmup_steps "
                                                                        << warmup_steps);
  auto cosine = std::make_shared<CosineSchedule>(base_lr, total_steps - warmup_steps, min_lr);
  return std::make_shared<WarmupSchedule>(cosine, warmup_steps);
}

}  // namespace recon::nn
