// CUDA graphs for method 2's training steps (apps/train_twostage
// --cuda-graphs): a tiny RotNet, decoder and refiner on the CUDA device are
// trained stage after stage, K steps each, with the library's step objective
// (models::twostage_step_outputs inside nn::training_step), once eagerly and
// once through CudaGraphStep (an eager warm-up, a capture, replays), from the
// same initial weights and batches. The per-step outputs (losses, the
// refiner's SSE and KL), every parameter, buffer (BatchNorm statistics),
// optimizer state and the refiner's noise generator must be bitwise equal
// after each stage: the stage-1 rotation batch, the frozen encoder and SSIM
// of stage 2 and the information-reduction noise of stage 3 replay exactly.
// Runs on a real GPU or under the SIMT emulator (RECON_CUDA=SIM); skipped
// without CUDA.
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "cuda_compare.hpp"
#include "graph_test_util.hpp"
#include "models/refiner.hpp"
#include "models/rotnet.hpp"
#include "models/twostage.hpp"
#include "nn/module.hpp"
#include "nn/optim.hpp"
#include "runtime/cuda_graph.hpp"
#include "runtime/ops.hpp"

using namespace recon;

namespace {

constexpr int kSteps = 4;    // per stage
constexpr int64_t kBatch = 4;
constexpr int kSize = 16;    // 16 x 16 gray images: one stride-2 RotNet stage to 8 x 8

using recon_test::graph_launches;
using recon_test::same_bits;

// The three parts of method 2, each drawing its initial weights from its own
// generator (as apps/train_twostage does); `noise` then draws the refiner's
// bottleneck noise.
struct Models {
  Generator rot_gen{21}, dec_gen{22}, noise{23};
  std::shared_ptr<models::RotNet> rotnet;
  std::shared_ptr<models::TwoStageAE> ae;
  std::shared_ptr<models::Refiner> refiner;

  Models() {
    models::RotNetConfig rc;
    rc.height = rc.width = kSize;
    rc.base_width = 4;
    rc.max_width = 8;
    models::TwoStageConfig tc;
    tc.ssim_weight = 0.5f;
    tc.code = 8;
    models::RefinerConfig fc;
    fc.height = fc.width = kSize;
    fc.base_width = 4;
    fc.latent_channels = 2;
    fc.beta = 0.1f;
    rotnet = std::make_shared<models::RotNet>(rc, rot_gen);
    ae = std::make_shared<models::TwoStageAE>(rotnet, tc, dec_gen);
    refiner = std::make_shared<models::Refiner>(fc, noise);
    ae->to(Device::cuda());
    refiner->to(Device::cuda());
  }

  // The modes of stage s and the parameters it trains.
  nn::NamedTensors start_stage(int s) {
    ae->eval();
    refiner->eval();
    nn::NamedTensors out;
    if (s == 1) {
      rotnet->unfreeze();
      rotnet->train();
      return rotnet->named_parameters();
    }
    rotnet->freeze();
    if (s == 2) {
      ae->train();  // the decoder; the RotNet stays in eval
      for (auto& [name, p] : ae->named_parameters())
        if (name.rfind("decoder.", 0) == 0) out.emplace_back(name, p);
      return out;
    }
    refiner->train();
    return refiner->named_parameters();
  }

  std::vector<std::vector<float>> state(const nn::Optimizer& opt) const {
    std::vector<std::vector<float>> st;
    for (const nn::Module* m : {(const nn::Module*)ae.get(), (const nn::Module*)refiner.get()}) {
      for (const auto& [name, p] : m->named_parameters()) st.push_back(p.to_vector());
      for (const auto& [name, b] : m->named_buffers()) st.push_back(b.to_vector());
    }
    for (const auto& [name, t] : opt.state_dict()) st.push_back(t.to_vector());
    return st;
  }
};

// The batch of step k of stage s: (kBatch, 1, kSize, kSize) in [0, 1], on CUDA.
Tensor batch(int s, int k) {
  Generator g(100 * (uint64_t)s + (uint64_t)k);
  return Tensor::uniform({kBatch, 1, kSize, kSize}, g, 0.f, 1.f).to(Device::cuda());
}

struct StageRun : recon_test::GraphCounts {
  std::vector<std::vector<float>> outputs;  // per step
  std::vector<std::vector<float>> state;    // after the stage
  uint64_t noise_offset = 0;
};

// Trains the three stages in order; one StageRun per stage.
std::vector<StageRun> train(bool graphs) {
  Models m;
  const Tensor rot_labels = models::rotation_labels(kBatch, Device::cuda());
  std::vector<StageRun> runs;
  for (int s = 1; s <= 3; ++s) {
    nn::AdamOptions ao;
    ao.lr = 1e-2f;
    nn::Adam opt(m.start_stage(s), ao);
    CudaGraphOptions go;
    go.enabled = graphs;
    CudaGraphStep step(nn::training_step(opt,
                                         [&](const std::vector<Tensor>& in) {
                                           return models::twostage_step_outputs(*m.ae, *m.refiner, s, in[0],
                                                                                rot_labels);
                                         }),
                       go);
    StageRun r;
    const int64_t launches = graph_launches();
    for (int k = 0; k < kSteps; ++k) {
      const int64_t id = step.run({batch(s, k)});
      if (k > 0) r.outputs.push_back(step.outputs(id - 1));  // the previous step's, as the app reads them
    }
    r.outputs.push_back(step.outputs(kSteps - 1));
    r.record(step, launches);
    r.state = m.state(opt);
    r.noise_offset = m.noise.offset();
    runs.push_back(std::move(r));
  }
  return runs;
}

}  // namespace

TEST_CASE("method 2's three training stages replay from a CUDA graph bitwise like eager steps" *
          test::needs_cuda()) {
  const std::vector<StageRun> eager = train(false), graph = train(true);
  REQUIRE(eager.size() == 3);
  REQUIRE(graph.size() == 3);
  const size_t n_outputs[3] = {1, 1, 3};  // {loss}, {loss}, {loss, sse, kl}
  for (int s = 1; s <= 3; ++s) {
    INFO("stage " << s);
    const StageRun &e = eager[(size_t)s - 1], &g = graph[(size_t)s - 1];
    REQUIRE(e.outputs.size() == (size_t)kSteps);
    REQUIRE(g.outputs.size() == (size_t)kSteps);
    for (int k = 0; k < kSteps; ++k) {
      INFO("step " << k);
      CHECK(e.outputs[(size_t)k].size() == n_outputs[s - 1]);
      CHECK(same_bits(e.outputs[(size_t)k], g.outputs[(size_t)k]));
    }
    REQUIRE(e.state.size() == g.state.size());
    for (size_t i = 0; i < e.state.size(); ++i) {
      INFO("state tensor " << i);
      CHECK(same_bits(e.state[i], g.state[i]));
    }
    CHECK(e.noise_offset == g.noise_offset);
    // Not vacuous: the stage learned, and the graph run really replayed.
    CHECK(e.outputs.front()[0] != e.outputs.back()[0]);
    CHECK(e.captures == 0);
    CHECK(e.eager == kSteps);
    CHECK(g.captures == 1);
    CHECK(g.eager == 1);
    CHECK(g.replays == kSteps - 1);
#if defined(RECON_SIMT)
    CHECK(e.graph_launches == 0);
    CHECK(g.graph_launches == kSteps - 1);  // the replays ran recorded work
#endif
  }
  // Stage 3 drew fresh bottleneck noise at every step, and its KL moved.
  CHECK(eager[2].noise_offset > eager[1].noise_offset);
  CHECK(eager[2].outputs[1][2] != eager[2].outputs[2][2]);
}
