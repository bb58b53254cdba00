// Kernel coverage for the SIM build: the launch log and the parsing of
// __global__ declarations (see simt_coverage.hpp).
#include "kernels/simt/simt_coverage.hpp"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <mutex>

#include "kernels/simt/simt_internal.hpp"

namespace recon::simt {

namespace {

bool ident_char(char c) { return std::isalnum((unsigned char)c) || c == '_'; }

// The source with comments and the insides of string and character
// literals replaced by spaces (line breaks kept).
std::string strip_comments(std::string_view s) {
  std::string out(s);
  for (size_t i = 0; i + 1 < out.size(); ++i) {
    if (out[i] == '"' || (out[i] == '\'' && (i == 0 || !ident_char(out[i - 1])))) {
      const char quote = out[i];
      for (++i; i < out.size() && out[i] != quote; ++i) {
        if (out[i] == '\\' && i + 1 < out.size()) out[i++] = ' ';
        if (out[i] != '\n') out[i] = ' ';
      }
    } else if (out[i] == '/' && out[i + 1] == '/') {
      for (; i < out.size() && out[i] != '\n'; ++i) out[i] = ' ';
    } else if (out[i] == '/' && out[i + 1] == '*') {
      size_t end = out.find("*/", i + 2);
      end = end == std::string::npos ? out.size() : end + 2;
      for (; i < end; ++i)
        if (out[i] != '\n') out[i] = ' ';
      --i;
    }
  }
  return out;
}

size_t skip_space(const std::string& s, size_t i) {
  while (i < s.size() && std::isspace((unsigned char)s[i])) ++i;
  return i;
}

// Index just past the parenthesised group that starts at s[i] == '('.
size_t skip_parens(const std::string& s, size_t i) {
  int depth = 0;
  for (; i < s.size(); ++i) {
    if (s[i] == '(') ++depth;
    if (s[i] == ')' && --depth == 0) return i + 1;
  }
  return s.size();
}

}  // namespace

std::string kernel_base_name(std::string_view text) {
  std::string s;
  for (char c : text)
    if (c != '(' && c != ')' && !std::isspace((unsigned char)c)) s += c;
  if (size_t lt = s.find('<'); lt != std::string::npos) s.resize(lt);
  if (size_t colon = s.rfind("::"); colon != std::string::npos) s.erase(0, colon + 2);
  return s;
}

std::vector<std::string> kernels_defined_in(std::string_view source) {
  const std::string s = strip_comments(source);
  const std::string key = "__global__";
  std::vector<std::string> names;
  for (size_t at = s.find(key); at != std::string::npos; at = s.find(key, at + key.size())) {
    const bool whole_word = (at == 0 || !ident_char(s[at - 1])) &&
                            (at + key.size() >= s.size() || !ident_char(s[at + key.size()]));
    if (!whole_word) continue;
    // Walk the declaration's words up to the first one followed by '(':
    // that is the kernel's name. Attribute-like words take their own parens.
    size_t i = at + key.size();
    std::string name;
    while (i < s.size()) {
      i = skip_space(s, i);
      if (i >= s.size() || s[i] == ';' || s[i] == '{' || s[i] == '(') break;
      if (!ident_char(s[i])) {
        ++i;  // '*', '&', ',' or template punctuation in a return type
        continue;
      }
      size_t start = i;
      while (i < s.size() && ident_char(s[i])) ++i;
      std::string word = s.substr(start, i - start);
      size_t next = skip_space(s, i);
      if (next < s.size() && s[next] == '(') {
        if (word == "__launch_bounds__" || word == "__attribute__" || word == "alignas" || word == "__align__") {
          i = skip_parens(s, next);
          continue;
        }
        name = word;
        break;
      }
    }
    bool seen = false;
    for (const std::string& n : names) seen = seen || n == name;
    if (!name.empty() && !seen) names.push_back(name);
  }
  return names;
}

std::set<std::string> read_kernel_log(const std::string& path) {
  std::set<std::string> names;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    std::string name = line.substr(0, line.find('\t'));
    if (!name.empty()) names.insert(name);
  }
  return names;
}

void log_launched_kernel(const char* launch_text) {
  static const char* path = std::getenv("RECON_SIMT_KERNEL_LOG");
  if (!path || !*path) return;
  static std::mutex mutex;
  static std::set<std::string> logged;
  std::string name = kernel_base_name(launch_text);
  std::lock_guard<std::mutex> lock(mutex);
  if (!logged.insert(name).second) return;
  // One short write per line with O_APPEND: lines from test processes that
  // run at the same time do not interleave.
  std::string line = name + "\t" + program_invocation_short_name + "\n";
  int fd = ::open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return;
  ssize_t written = ::write(fd, line.data(), line.size());
  (void)written;
  ::close(fd);
}

}  // namespace recon::simt
