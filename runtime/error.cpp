// Formatting of the messages thrown by RECON_CHECK and RECON_CUDA_CHECK.
#include "runtime/error.hpp"

#include <cstring>

namespace recon::detail {

static const char* base_name(const char* path) {
  const char* slash = std::strrchr(path, '/');
  return slash ? slash + 1 : path;
}

void fail(const char* file, int line, const char* cond, const std::string& msg) {
  std::ostringstream os;
  os << msg << " [" << base_name(file) << ":" << line;
  if (cond && std::strcmp(cond, "false") != 0) os << ", check `" << cond << "`";
  os << "]";
  throw Error(os.str());
}

#if defined(RECON_WITH_CUDA)
void cuda_fail(const char* file, int line, const char* expr, int code, const char* what) {
  std::ostringstream os;
  os << "CUDA error " << code << " (" << what << ") in `" << expr << "` [" << base_name(file) << ":"
     << line << "]";
  throw Error(os.str());
}
#endif

}  // namespace recon::detail
