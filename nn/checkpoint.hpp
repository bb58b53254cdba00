// Training checkpoints: one safetensors file holding the model's state_dict
// (tensors named "model.<name>"), the optimizer's state ("optimizer.<name>")
// and the run's configuration (a JSON string in the "config" metadata entry).
// Any safetensors reader (PyTorch's included) can open it. Saving is atomic,
// records a CRC-32 of the tensor data (metadata "data_crc32") and keeps the
// previous good file as "<path>.prev"; loading checks the checksum, names and
// shapes and names every tensor that is missing, unexpected or of the wrong
// shape; load_latest_good_checkpoint falls back to "<path>.prev" when the
// newest file is missing, truncated or corrupted.
#pragma once
#include <string>

#include "nn/json.hpp"
#include "nn/safetensors.hpp"
#include "nn/state_dict.hpp"

namespace recon::nn {

class Module;
class Optimizer;

// The "format" metadata value that marks a ReconAD checkpoint.
inline constexpr const char* kCheckpointFormat = "reconad.checkpoint.v1";

struct Checkpoint {
  StateDict model;      // prefix "model." removed
  StateDict optimizer;  // prefix "optimizer." removed
  std::string optimizer_type;  // e.g. "AdamW"; empty when no optimizer was saved
  Json config;          // the run configuration; null when none was saved
  Metadata metadata;    // every metadata string, "format" and "config" included
};

// Writes a checkpoint atomically. `extra` metadata may not use the reserved
// keys "format", "config", "optimizer" and "data_crc32". When the file now at
// `path` reads as a good checkpoint, it is kept as previous_checkpoint_path
// (a damaged one is not, so the last good previous file survives).
void save_checkpoint(const std::string& path, const StateDict& model, const StateDict& optimizer = {},
                     const std::string& optimizer_type = "", const Json& config = Json(), const Metadata& extra = {});
void save_checkpoint(const std::string& path, const Module& model, const Optimizer* optimizer = nullptr,
                     const Json& config = Json(), const Metadata& extra = {});

// Reads and validates a checkpoint (the data checksum, the format tag, the
// name prefixes).
Checkpoint read_checkpoint(const std::string& path);

// "<path>.prev": where save_checkpoint keeps the previous good file.
std::string previous_checkpoint_path(const std::string& path);

// The newest usable checkpoint: `path`, or, when reading it fails (missing,
// truncated, corrupted, not a checkpoint), the previous good one. `used_path`
// says which; `warning` is empty, or says why `path` was passed over (it is
// also printed to stderr). Throws, naming both files and both problems, when
// neither reads.
struct LatestCheckpoint {
  Checkpoint checkpoint;
  std::string used_path;
  std::string warning;
};
LatestCheckpoint read_latest_good_checkpoint(const std::string& path);

// Checks that a checkpoint was written by `app` (the config's "app" field, set
// by every training app); throws naming the file, the app that wrote it and
// the one that needs it (e.g. a method-1 checkpoint given to train_twostage).
void require_checkpoint_app(const Checkpoint& ck, const std::string& path, const std::string& app);

// Restores `model` (and `optimizer`, if given: the checkpoint must hold the
// same optimizer type) in place; returns the saved configuration. With
// strict = false, tensors the model lacks are ignored (missing ones still fail).
Json load_checkpoint(const std::string& path, Module& model, Optimizer* optimizer = nullptr, bool strict = true);
// The same from the newest usable checkpoint (see read_latest_good_checkpoint);
// the result's checkpoint.config is the saved configuration.
LatestCheckpoint load_latest_good_checkpoint(const std::string& path, Module& model, Optimizer* optimizer = nullptr,
                                             bool strict = true);

}  // namespace recon::nn
