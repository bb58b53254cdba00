// safetensors files (DESIGN.md, decision 8), the format PyTorch's
// `safetensors` package reads and writes:
//   [8 bytes] N, the header length, unsigned little-endian
//   [N bytes] a JSON object: {"name": {"dtype": "F32", "shape": [...],
//             "data_offsets": [begin, end]}, ..., "__metadata__": {str: str}},
//             padded with spaces so that the data starts 8-byte aligned
//   [rest]    raw little-endian tensor data; offsets count from its start.
// The writer emits F32 in the order tensors are given; the reader accepts F32
// and converts F16, BF16 and F64 to float32, and rejects a malformed file with
// a message that names the file and the problem. A writer may record a CRC-32
// (zlib's) of the data section in the metadata entry "data_crc32" (8 lower-
// case hex digits); a reader that finds it checks it, so a bit flip inside
// tensor data is caught, not only damage to the header.
#pragma once
#include <map>
#include <string>
#include <string_view>

#include "nn/state_dict.hpp"

namespace recon::nn {

using Metadata = std::map<std::string, std::string>;

// The metadata key that holds the data section's CRC-32.
inline constexpr const char* kDataCrc32Key = "data_crc32";

struct SafetensorsContents {
  StateDict tensors;  // CPU tensors, in the order of their data offsets
  Metadata metadata;  // the "__metadata__" strings (empty if none)
};

// The bytes of a safetensors file holding `tensors` (any device; copied to
// the host) and `metadata`; with `checksum`, "data_crc32" is added to the
// metadata (which may then not use that key itself).
std::string encode_safetensors(const StateDict& tensors, const Metadata& metadata = {}, bool checksum = false);
// Parses and validates the bytes of a file; `source` names it in errors.
// When the metadata holds "data_crc32", the data section must match it.
SafetensorsContents decode_safetensors(std::string_view bytes, const std::string& source);

// Writes atomically (see write_file_atomic) / reads a whole file.
void save_safetensors(const std::string& path, const StateDict& tensors, const Metadata& metadata = {},
                      bool checksum = false);
SafetensorsContents load_safetensors(const std::string& path);

// Writes `bytes` to "<path>.tmp", flushes and fsyncs it, renames it over
// `path` and fsyncs the directory: a crash leaves either the old file or the
// new one, never a torn one. A failed write (disk full, file size limit)
// removes the .tmp, leaves `path` as it was, and throws naming `path` and
// the OS error. With `keep_previous` non-empty, the file now at `path` (if
// any) is kept under that name (a hard link made once the new data are on
// disk, before the rename), so the last two versions survive.
void write_file_atomic(const std::string& path, std::string_view bytes, const std::string& keep_previous = "");
std::string read_file(const std::string& path);

}  // namespace recon::nn
