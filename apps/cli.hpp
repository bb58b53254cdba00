// Command-line helpers shared by the apps: a small flag parser that prints
// usage for --help (exit 0) and for unknown flags or bad values (exit 2), and
// a progress bar with images/s and ETA. Header-only: apps are thin mains.
#pragma once
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

namespace recon::apps {

class Cli {
 public:
  Cli(std::string program, std::string about) : program_(std::move(program)), about_(std::move(about)) {}

  void add(const std::string& name, int& v, const std::string& help) {
    add_flag(name, std::to_string(v), help, [&v](const std::string& s) { v = std::stoi(s); });
  }
  void add(const std::string& name, uint64_t& v, const std::string& help) {
    add_flag(name, std::to_string(v), help, [&v](const std::string& s) { v = std::stoull(s); });
  }
  void add(const std::string& name, float& v, const std::string& help) {
    add_flag(name, shortest(v), help, [&v](const std::string& s) { v = std::stof(s); });
  }
  void add(const std::string& name, double& v, const std::string& help) {
    add_flag(name, shortest(v), help, [&v](const std::string& s) { v = std::stod(s); });
  }
  void add(const std::string& name, std::string& v, const std::string& help) {
    add_flag(name, v, help, [&v](const std::string& s) { v = s; });
  }
  // A switch: present means true; takes no value.
  void add_switch(const std::string& name, bool& v, const std::string& help) {
    flags_.push_back({name, "", help, [&v](const std::string&) { v = true; }, true});
  }

  // Parses argv; exits 0 after --help, 2 on a usage error.
  void parse(int argc, char** argv) const {
    for (int i = 1; i < argc; ++i) {
      std::string arg = argv[i];
      if (arg == "--help" || arg == "-h") {
        usage(stdout);
        std::exit(0);
      }
      std::string value;
      bool has_value = false;
      if (auto eq = arg.find('='); eq != std::string::npos) {
        value = arg.substr(eq + 1);
        arg = arg.substr(0, eq);
        has_value = true;
      }
      const Flag* f = find(arg);
      if (!f) fail("unknown flag '" + arg + "'");
      if (!f->is_switch && !has_value) {
        if (i + 1 >= argc) fail("flag " + arg + " needs a value");
        value = argv[++i];
      }
      try {
        f->set(value);
      } catch (const std::exception&) {
        fail("bad value '" + value + "' for " + arg);
      }
    }
  }

  void usage(FILE* out) const {
    std::fprintf(out, "usage: %s [flags]\n%s\n\nflags:\n", program_.c_str(), about_.c_str());
    for (const Flag& f : flags_) {
      std::string head = f.name + (f.is_switch ? "" : " VALUE");
      std::fprintf(out, "  %-26s %s", head.c_str(), f.help.c_str());
      if (!f.is_switch) std::fprintf(out, " (default: %s)", f.def.empty() ? "\"\"" : f.def.c_str());
      std::fprintf(out, "\n");
    }
    std::fprintf(out, "  %-26s %s\n", "--help", "print this help and exit");
  }

 private:
  struct Flag {
    std::string name, def, help;
    std::function<void(const std::string&)> set;
    bool is_switch = false;
  };
  static std::string shortest(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
  }
  void add_flag(const std::string& name, std::string def, const std::string& help,
                std::function<void(const std::string&)> set) {
    flags_.push_back({name, std::move(def), help, std::move(set), false});
  }
  const Flag* find(const std::string& name) const {
    for (const Flag& f : flags_)
      if (f.name == name) return &f;
    return nullptr;
  }
  [[noreturn]] void fail(const std::string& msg) const {
    std::fprintf(stderr, "%s: %s\n", program_.c_str(), msg.c_str());
    usage(stderr);
    std::exit(2);
  }
  std::string program_, about_;
  std::vector<Flag> flags_;
};

// A one-line progress bar: redrawn in place on a terminal, a line per 10%
// otherwise (logs and CI).
class Progress {
 public:
  Progress(std::string label, int64_t total)
      : label_(std::move(label)), total_(total), start_(Clock::now()), tty_(isatty(fileno(stderr))) {}

  // `done` items so far; `status` is appended (e.g. "loss 0.0123").
  void update(int64_t done, const std::string& status) {
    const double secs = seconds();
    const double rate = secs > 0 ? (double)done / secs : 0.0;
    const double eta = rate > 0 ? (double)(total_ - done) / rate : 0.0;
    const int decile = total_ > 0 ? (int)(10 * done / total_) : 10;
    if (!tty_ && decile == last_decile_ && done < total_) return;
    last_decile_ = decile;
    constexpr int kWidth = 24;
    const int filled = total_ > 0 ? (int)(kWidth * done / total_) : kWidth;
    std::string bar(filled, '=');
    bar.resize(kWidth, ' ');
    std::fprintf(stderr, "%s%s [%s] %lld/%lld %s %.0f img/s ETA %s%s", tty_ ? "\r" : "", label_.c_str(),
                 bar.c_str(), (long long)done, (long long)total_, status.c_str(), rate, clock_str(eta).c_str(),
                 tty_ ? "\033[K" : "\n");
    std::fflush(stderr);
  }
  void finish() {
    if (tty_) std::fprintf(stderr, "\n");
  }
  double seconds() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

 private:
  using Clock = std::chrono::steady_clock;
  static std::string clock_str(double s) {
    char buf[32];
    const long t = (long)(s + 0.5);
    std::snprintf(buf, sizeof buf, "%ld:%02ld", t / 60, t % 60);
    return buf;
  }
  std::string label_;
  int64_t total_;
  Clock::time_point start_;
  bool tty_;
  int last_decile_ = -1;
};

// The scoring flags that recon_eval and recon_predict share, bound to their
// configs' fields, with one set of help texts.
inline void add_scoring_flags(Cli& cli, int& batch_size, std::string& device, int& tile, int& stride,
                              double& map_max) {
  cli.add("--batch-size", batch_size,
          "images (or tiles) per forward pass; 1 makes scores independent of batching (identical in recon_eval and "
          "recon_predict), larger is faster but moves the last float bits with the batch's composition");
  cli.add("--device", device, "cpu or cuda");
  cli.add("--tile", tile,
          "tile mode: score overlapping N x N windows at native resolution (0: off; -1: the checkpoint's "
          "train_twostage --train-tile, off when it has none)");
  cli.add("--stride", stride, "tile mode: window stride (0: tile / 2)");
  cli.add("--map-max", map_max, "pixel-map value shown as the hottest colour (normals average about 2)");
}

}  // namespace recon::apps
