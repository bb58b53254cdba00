// SIM build only: every kernel in kernels/cuda/*.cu must have been launched
// by a test suite (run by ctest before this one, with RECON_SIMT_KERNEL_LOG
// naming the launch log). A kernel no CUDA-path test runs fails here by name.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/simt/simt_coverage.hpp"

TEST_CASE("every kernel in kernels/cuda is launched by a test in the SIM build") {
  const char* log = std::getenv("RECON_SIMT_KERNEL_LOG");
  REQUIRE_MESSAGE(log != nullptr, "RECON_SIMT_KERNEL_LOG is not set: run this through ctest");
  const std::set<std::string> launched = recon::simt::read_kernel_log(log);

  const std::filesystem::path dir = std::filesystem::path(RECON_SOURCE_DIR) / "kernels" / "cuda";
  std::vector<std::filesystem::path> sources;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    if (entry.path().extension() == ".cu") sources.push_back(entry.path());
  std::sort(sources.begin(), sources.end());

  int kernels = 0;
  std::vector<std::string> missing;
  for (const auto& path : sources) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    for (const std::string& name : recon::simt::kernels_defined_in(text.str())) {
      ++kernels;
      if (!launched.count(name)) missing.push_back(path.filename().string() + ": " + name);
    }
  }
  MESSAGE(kernels << " kernels in " << sources.size() << " files under kernels/cuda; " << launched.size()
                  << " kernel names in the launch log");
  std::string list;
  for (const std::string& m : missing) list += "\n  " + m;
  CHECK_MESSAGE(missing.empty(), "kernels that no test launched in the SIM build:" << list);
}
