// Scalar draws from the Philox stream, counter reservation, and the
// replay-safe draws of a captured CUDA graph (see generator.hpp).
#include "runtime/generator.hpp"

#include <memory>

#include "kernels/common/philox.hpp"
#include "runtime/cuda_context.hpp"
#include "runtime/cuda_graph.hpp"
#include "runtime/error.hpp"

namespace recon {

uint64_t Generator::reserve(uint64_t n) {
  RECON_CHECK(!cuda::capturing(),
              "Generator::reserve(" << n << "): a random draw whose counters are fixed on the host while the runtime "
                                    << "stream captures a CUDA graph would repeat the same numbers at every replay "
                                    << "(e.g. Tensor::uniform/normal/bernoulli or a host-side random choice inside "
                                    << "a captured step); make such tensors outside the step, or turn CUDA graphs "
                                    << "off (ops that draw inside a graph use Generator::draw)");
  uint64_t first = offset_;
  offset_ += n;
  return first;
}

PhiloxArgs Generator::draw(uint64_t n) {
  if (!cuda::capturing()) return PhiloxArgs{seed_, reserve(n), nullptr};
  const uint64_t id = cuda::capture_id();
  if (capture_id_ != id) {
    // The first draw of this generator in this capture: a device slot {seed,
    // base} filled before each replay with the live state, after which the
    // host offset moves on by what one replay consumes (known at the end).
    auto consumed = std::make_shared<uint64_t>(0);
    capture_id_ = id;
    capture_base_ = offset_;
    capture_state_ = static_cast<const uint64_t*>(cuda::replay_slot(2 * sizeof(uint64_t), [this, consumed](void* host) {
      uint64_t* s = static_cast<uint64_t*>(host);
      s[0] = seed_;
      s[1] = offset_;
      offset_ += *consumed;
    }));
    // The capture itself runs nothing: the offset goes back to where the
    // step started, and each replay advances it.
    cuda::on_capture_end([this, consumed] {
      *consumed = offset_ - capture_base_;
      offset_ = capture_base_;
      capture_id_ = 0;
      capture_state_ = nullptr;
    });
  }
  const uint64_t delta = offset_ - capture_base_;
  offset_ += n;
  return PhiloxArgs{seed_, delta, capture_state_};
}

float Generator::uniform() { return philox_uniform(seed_, reserve(1), 0); }
float Generator::normal() { return philox_normal(seed_, reserve(1), 0); }

uint64_t Generator::next_u64() {
  Philox4 r = philox4x32_10(seed_, reserve(1));
  return ((uint64_t)r.v[0] << 32) | r.v[1];
}

int64_t Generator::randint(int64_t n) {
  // Modulo bias is below 2^-40 for n < 2^24, negligible for shuffles.
  return (int64_t)(next_u64() % (uint64_t)n);
}

Generator& default_generator() {
  static Generator g(0);
  return g;
}

void manual_seed(uint64_t seed) { default_generator().set_state(seed, 0); }

}  // namespace recon
