// Helpers shared by the app end-to-end suites: running an app (one OpenMP
// thread, output to a log) and reading its exit code and output, reading text
// and JSON-lines files, the tiny synthetic MVTec-layout category the suites
// train on, noise images, and train_twostage's tiny-network flags.
#pragma once
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <sstream>
#include <string>
#include <vector>

#include "data/image.hpp"
#include "data/image_io.hpp"
#include "data/synthetic.hpp"
#include "nn/json.hpp"
#include "runtime/generator.hpp"
#include "runtime/tensor.hpp"
#include "test_data_util.hpp"

namespace recon_test {

namespace fs = std::filesystem;

inline std::string read_text(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// One JSON value per non-empty line.
inline std::vector<recon::nn::Json> json_lines(const fs::path& p) {
  std::vector<recon::nn::Json> out;
  std::istringstream in(read_text(p));
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(recon::nn::Json::parse(line));
  return out;
}

// Runs a shell command line; its exit code, 128 + the signal when killed.
inline int run_shell(const std::string& cmd) {
  const int status = std::system(cmd.c_str());
  REQUIRE(status != -1);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

// The command line that runs `exe args` with one OpenMP thread (the networks
// are tiny, and on a shared machine spinning OpenMP barriers slow a 2-thread
// run down many times), stdout and stderr to `log`; under
// `timeout -s KILL kill_after` when kill_after > 0.
inline std::string app_command(const std::string& exe, const std::string& args, const fs::path& log,
                               double kill_after = 0) {
  std::string cmd = "OMP_NUM_THREADS=1 ";
  if (kill_after > 0) cmd += "timeout -s KILL " + std::to_string(kill_after) + " ";
  return cmd + "'" + exe + "' " + args + " > '" + log.string() + "' 2>&1";
}

// Runs `exe args` (app_command); the app must exit normally: returns its exit code.
inline int run_app(const std::string& exe, const std::string& args, const fs::path& log) {
  const std::string cmd = app_command(exe, args, log);
  const int rc = std::system(cmd.c_str());
  REQUIRE_MESSAGE((rc != -1 && WIFEXITED(rc)), "did not exit normally: " << cmd);
  return WEXITSTATUS(rc);
}

struct AppResult {
  int status = -1;     // exit code, or 128 + signal
  std::string output;  // stdout + stderr
};

// Runs `exe args` (app_command, killed after kill_after seconds when > 0):
// its exit code (128 + signal when killed) and output.
inline AppResult run_app_output(const std::string& exe, const std::string& args, const fs::path& log,
                                double kill_after = 0) {
  AppResult r;
  r.status = run_shell(app_command(exe, args, log, kill_after));
  r.output = read_text(log);
  return r;
}

// A small gray texture category "tex" (data/synthetic.hpp): `train` normals
// and `test_good` good and 3 x `test_defect` defective test images with masks,
// size x size pixels, written under <dir>/data; returns that root.
inline fs::path write_tex_category(const fs::path& dir, int size, int train, int test_good, int test_defect,
                                   uint64_t seed) {
  recon::data::SyntheticOptions so;
  so.size = size;
  so.channels = 1;
  so.train_count = train;
  so.test_good_count = test_good;
  so.test_defect_count = test_defect;
  so.seed = seed;
  recon::data::write_synthetic_mvtec(dir / "data", "tex", so);
  return dir / "data";
}

// A height x width image of uniform noise, gray (or RGB: channels 3),
// written as BMP when `p` ends in .bmp, else as PNG.
inline void write_noise_image(const fs::path& p, int height, int width, recon::Generator& gen, int channels = 1) {
  recon::data::Image img(channels, height, width);
  const std::vector<float> v = recon::Tensor::uniform({(int64_t)channels * height * width}, gen).to_vector();
  img.pixels.assign(v.begin(), v.end());
  fs::create_directories(p.parent_path());
  if (p.extension() == ".bmp")
    recon::data::write_bmp(p, img);
  else
    recon::data::write_png(p, img);
}

// Relabels anomalies normal: the first `per_defect` test images of each of
// `defects` move to test/good (as <prefix><k>_<defect>.png) and lose their
// masks. The model ranks them high, so the image AUROC is below 1 and its
// agreement between apps says something about the scores.
inline void relabel_as_good(const fs::path& category, std::initializer_list<const char*> defects, int per_defect,
                            const std::string& prefix) {
  for (const char* defect : defects)
    for (int k = 0; k < per_defect; ++k) {
      const std::string n = "00" + std::to_string(k);
      fs::rename(category / "test" / defect / (n + ".png"),
                 category / "test" / "good" / (prefix + std::to_string(k) + "_" + defect + ".png"));
      fs::remove(category / "ground_truth" / defect / (n + "_mask.png"));
    }
}

// train_twostage on the "tex" category of `data` with tiny networks (a run
// takes seconds on 2 cores), a quarter of the normals held out; `extra`: the
// seed, epochs and any further flags.
inline std::string twostage_tiny_args(const fs::path& data, const fs::path& out, const std::string& extra) {
  return "--dataset mvtec --data '" + data.string() + "' --category tex --calibration-fraction 0.25 " +
         "--width 8 --max-width 16 --refiner-width 8 --batch-size 8 --device cpu " + extra + " --out '" + out.string() +
         "'";
}

#ifdef RECON_SOURCE_DIR
// The shared PIPED copy beside the repository (required to exist).
inline fs::path shared_piped_root() {
  const fs::path root = fs::path(RECON_SOURCE_DIR) / ".." / "shared" / "data" / "piped";
  REQUIRE_MESSAGE(fs::is_directory(root), root.string() << " is missing (the shared PIPED copy)");
  return root;
}
#endif

}  // namespace recon_test
