// Shared by the fuzz targets: a per-process scratch folder for readers that
// take paths, file writing, and the rule that a reader may only fail with a
// recon::Error (anything else -- a crash, a sanitizer report, another
// exception type -- is a finding).
#pragma once
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "runtime/error.hpp"

namespace recon::fuzz {

namespace fs = std::filesystem;

// A folder of its own for this process, emptied by each call's user as needed.
inline const fs::path& scratch_dir() {
  static const fs::path dir = [] {
    fs::path d = fs::temp_directory_path() / ("reconad_fuzz_" + std::to_string(::getpid()));
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
  }();
  return dir;
}

inline void write_file(const fs::path& path, const uint8_t* data, size_t n) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), (std::streamsize)n);
}

// Runs `f`; a recon::Error is the expected way to refuse bad input.
template <class F>
void expect_ok_or_error(F&& f) {
  try {
    f();
  } catch (const recon::Error&) {
  }
}

}  // namespace recon::fuzz
