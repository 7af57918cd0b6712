// The `kdscope` command: a few kilobytes that start the program (libexec/kdscope-program) with
// OMP_WAIT_POLICY=PASSIVE unless the user chose a policy (openmp_wait.h). The program used to
// restart itself to get there, which loaded LibTorch twice: 0.3-0.45 s more on every command
// (bench/README.md, "Start-up"). No Qt, no LibTorch here.
#include <climits>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <unistd.h>

#include "app/openmp_wait.h"

namespace {

/// The directory of this executable ("" when /proc/self/exe cannot be read).
std::string ownDirectory() {
  char path[PATH_MAX];
  const ssize_t length = ::readlink("/proc/self/exe", path, sizeof path - 1);
  if (length <= 0) {
    return "";
  }
  path[length] = '\0';
  std::string self(path);
  const auto slash = self.rfind('/');
  return slash == std::string::npos ? std::string(".") : self.substr(0, slash);
}

bool executable(const std::string& path) {
  return ::access(path.c_str(), X_OK) == 0;
}

} // namespace

int main(int /*argc*/, char** argv) {
  kdscope::app::choosePassiveOpenMpWait();
  const std::string dir = ownDirectory();
  // The build tree keeps the program in libexec/ beside this file; an installed tree where
  // `cmake --install` put it, relative to this file (../libexec/kdscope/kdscope-program with
  // the default CMAKE_INSTALL_BINDIR and CMAKE_INSTALL_LIBEXECDIR).
  const std::string candidates[] = {dir + "/libexec/kdscope-program", dir + "/" + KDSCOPE_PROGRAM_FROM_COMMAND};
  for (const std::string& program : candidates) {
    if (!dir.empty() && executable(program)) {
      ::execv(program.c_str(), argv);
      std::fprintf(stderr, "kdscope: cannot start %s: %s\n", program.c_str(), std::strerror(errno));
      return 127;
    }
  }
  std::fprintf(stderr, "kdscope: the program is missing: neither %s nor %s is an executable file\n",
               candidates[0].c_str(), candidates[1].c_str());
  return 127;
}
