// Checkpoint files: the model and optimizer StateDicts under name prefixes in
// one safetensors file, the configuration as a JSON metadata string.
#include "nn/checkpoint.hpp"

#include <iostream>

#include "nn/module.hpp"
#include "nn/optim.hpp"
#include "runtime/error.hpp"

namespace recon::nn {

namespace {
constexpr const char* kModelPrefix = "model.";
constexpr const char* kOptimPrefix = "optimizer.";

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }
}  // namespace

void save_checkpoint(const std::string& path, const StateDict& model, const StateDict& optimizer,
                     const std::string& optimizer_type, const Json& config, const Metadata& extra) {
  RECON_CHECK(optimizer.empty() || !optimizer_type.empty(),
              "save_checkpoint: " << path << ": optimizer state given without its optimizer type");
  Metadata meta;
  for (const auto& [k, v] : extra) {
    RECON_CHECK(k != "format" && k != "config" && k != "optimizer" && k != kDataCrc32Key,
                "save_checkpoint: metadata key \"" << k << "\" is reserved");
    meta[k] = v;
  }
  meta["format"] = kCheckpointFormat;
  if (!config.is_null()) meta["config"] = config.dump();
  if (!optimizer_type.empty()) meta["optimizer"] = optimizer_type;
  StateDict all;
  for (const auto& [name, t] : model) all.insert(kModelPrefix + name, t);
  for (const auto& [name, t] : optimizer) all.insert(kOptimPrefix + name, t);
  const std::string bytes = encode_safetensors(all, meta, /*checksum=*/true);
  // Keep the file being replaced only when it is itself good: a damaged one
  // would push out the good previous file.
  bool current_good = false;
  try {
    read_checkpoint(path);
    current_good = true;
  } catch (const Error&) {
  }
  write_file_atomic(path, bytes, current_good ? previous_checkpoint_path(path) : "");
}

void save_checkpoint(const std::string& path, const Module& model, const Optimizer* optimizer, const Json& config,
                     const Metadata& extra) {
  if (optimizer)
    save_checkpoint(path, model.state_dict(), optimizer->state_dict(), optimizer->type_name(), config, extra);
  else
    save_checkpoint(path, model.state_dict(), StateDict(), "", config, extra);
}

Checkpoint read_checkpoint(const std::string& path) {
  SafetensorsContents file = load_safetensors(path);
  auto format = file.metadata.find("format");
  RECON_CHECK(format != file.metadata.end() && format->second == kCheckpointFormat,
              "load_checkpoint: " << path << ": not a ReconAD checkpoint (metadata \"format\" is "
                                  << (format == file.metadata.end() ? "missing" : "\"" + format->second + "\"")
                                  << ", expected \"" << kCheckpointFormat << "\")");
  Checkpoint ck;
  for (const auto& [name, t] : file.tensors) {
    if (starts_with(name, kModelPrefix))
      ck.model.insert(name.substr(std::string(kModelPrefix).size()), t);
    else if (starts_with(name, kOptimPrefix))
      ck.optimizer.insert(name.substr(std::string(kOptimPrefix).size()), t);
    else
      RECON_FAIL("load_checkpoint: " << path << ": tensor \"" << name << "\" is neither \"" << kModelPrefix
                                     << "<name>\" nor \"" << kOptimPrefix << "<name>\"");
  }
  if (auto it = file.metadata.find("optimizer"); it != file.metadata.end()) ck.optimizer_type = it->second;
  if (auto it = file.metadata.find("config"); it != file.metadata.end()) {
    try {
      ck.config = Json::parse(it->second);
    } catch (const Error& e) {
      RECON_FAIL("load_checkpoint: " << path << ": metadata \"config\" is not valid JSON: " << e.what());
    }
  }
  ck.metadata = std::move(file.metadata);
  return ck;
}

std::string previous_checkpoint_path(const std::string& path) { return path + ".prev"; }

LatestCheckpoint read_latest_good_checkpoint(const std::string& path) {
  LatestCheckpoint out;
  std::string newest_error;
  try {
    out.checkpoint = read_checkpoint(path);
    out.used_path = path;
    return out;
  } catch (const Error& e) {
    newest_error = e.what();
  }
  const std::string prev = previous_checkpoint_path(path);
  try {
    out.checkpoint = read_checkpoint(prev);
  } catch (const Error& e) {
    RECON_FAIL("no usable checkpoint: " << path << ": " << newest_error << "; previous " << prev << ": " << e.what());
  }
  out.used_path = prev;
  out.warning = "checkpoint " + path + " is unusable (" + newest_error + "); using the previous good one, " + prev;
  std::cerr << "warning: " << out.warning << "\n";
  return out;
}

namespace {
// Restores model (and optimizer) from a read checkpoint; `path` names it in errors.
void apply_checkpoint(const Checkpoint& ck, const std::string& path, Module& model, Optimizer* optimizer, bool strict) {
  try {
    // Everything is checked before anything is copied: a failed load leaves
    // the model and the optimizer as they were.
    check_state_dict(model.type_name() + " state", model.state_dict(), ck.model, strict);
    if (optimizer) {
      RECON_CHECK(!ck.optimizer_type.empty(), "the checkpoint holds no optimizer state");
      RECON_CHECK(ck.optimizer_type == optimizer->type_name(),
                  "the optimizer state is for " << ck.optimizer_type << ", not " << optimizer->type_name());
      check_state_dict(optimizer->type_name() + " state", optimizer->state_dict(), ck.optimizer, true);
    }
    model.load_state_dict(ck.model, strict);
    if (optimizer) optimizer->load_state_dict(ck.optimizer);
  } catch (const Error& e) {
    RECON_FAIL("load_checkpoint: " << path << ": " << e.what());
  }
}
}  // namespace

Json load_checkpoint(const std::string& path, Module& model, Optimizer* optimizer, bool strict) {
  Checkpoint ck = read_checkpoint(path);
  apply_checkpoint(ck, path, model, optimizer, strict);
  return ck.config;
}

LatestCheckpoint load_latest_good_checkpoint(const std::string& path, Module& model, Optimizer* optimizer,
                                             bool strict) {
  LatestCheckpoint latest = read_latest_good_checkpoint(path);
  apply_checkpoint(latest.checkpoint, latest.used_path, model, optimizer, strict);
  return latest;
}

void require_checkpoint_app(const Checkpoint& ck, const std::string& path, const std::string& app) {
  const Json* writer = ck.config.is_object() ? ck.config.find("app") : nullptr;
  const std::string wrote = writer && writer->is_string() ? writer->as_string() : "";
  RECON_CHECK(wrote == app, path << " is " << (wrote.empty() ? "not a checkpoint of a ReconAD training app"
                                                             : "a checkpoint of " + wrote)
                                 << "; this needs one written by " << app);
}

}  // namespace recon::nn
