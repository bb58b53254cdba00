// safetensors files (DESIGN.md, decision 8), the format PyTorch's
// `safetensors` package reads and writes:
//   [8 bytes] N, the header length, unsigned little-endian
//   [N bytes] a JSON object: {"name": {"dtype": "F32", "shape": [...],
//             "data_offsets": [begin, end]}, ..., "__metadata__": {str: str}},
//             padded with spaces so that the data starts 8-byte aligned
//   [rest]    raw little-endian tensor data; offsets count from its start.
// The writer emits F32 in the order tensors are given; the reader accepts F32
// and converts F16, BF16 and F64 to float32, and rejects a malformed file with
// a message that names the file and the problem.
#pragma once
#include <map>
#include <string>
#include <string_view>

#include "nn/state_dict.hpp"

namespace recon::nn {

using Metadata = std::map<std::string, std::string>;

struct SafetensorsContents {
  StateDict tensors;  // CPU tensors, in the order of their data offsets
  Metadata metadata;  // the "__metadata__" strings (empty if none)
};

// The bytes of a safetensors file holding `tensors` (any device; copied to
// the host) and `metadata`.
std::string encode_safetensors(const StateDict& tensors, const Metadata& metadata = {});
// Parses and validates the bytes of a file; `source` names it in errors.
SafetensorsContents decode_safetensors(std::string_view bytes, const std::string& source);

// Writes atomically (see write_file_atomic) / reads a whole file.
void save_safetensors(const std::string& path, const StateDict& tensors, const Metadata& metadata = {});
SafetensorsContents load_safetensors(const std::string& path);

// Writes `bytes` to "<path>.tmp", flushes and fsyncs it, renames it over
// `path` and fsyncs the directory: a crash leaves either the old file or the
// new one, never a torn one.
void write_file_atomic(const std::string& path, std::string_view bytes);
std::string read_file(const std::string& path);

}  // namespace recon::nn
