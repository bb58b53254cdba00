// A synthetic anomaly dataset for tests and end-to-end runs: periodic
// textures (a few sinusoidal gratings plus fine noise) with three defect
// types drawn on top: thin scratches, dark holes and colour blobs, each
// with its exact mask (the pixels it painted). Seeded; small sizes; written
// in the MVTec AD layout as PNGs so load_mvtec reads it back.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>

#include "data/dataset.hpp"
#include "runtime/generator.hpp"

namespace recon::data {

enum class SyntheticDefect { None, Scratch, Hole, Blob };
const char* defect_name(SyntheticDefect d);  // "good", "scratch", "hole", "blob"

struct SyntheticOptions {
  int size = 64;                 // square images, side in pixels
  int channels = 3;              // 1 or 3
  int train_count = 16;          // train/good
  int test_good_count = 4;       // test/good
  int test_defect_count = 4;     // test/<defect>, per defect type
  uint64_t seed = 0;
};

// One image of a category's texture (the category fixed by texture_seed,
// the variation by gen) with `defect` painted on; label 1 and a mask when
// defective, label 0 and an all-zero mask otherwise.
Sample synthetic_sample(const SyntheticOptions& opt, uint64_t texture_seed, SyntheticDefect defect, Generator& gen);

// Writes <root>/<category>/{train/good, test/good, test/<defect>,
// ground_truth/<defect>} as PNGs (NNN.png, masks NNN_mask.png).
void write_synthetic_mvtec(const std::filesystem::path& root, const std::string& category,
                           const SyntheticOptions& opt);

}  // namespace recon::data
