#include "core/common/blas_threads.h"

#include <dlfcn.h>

namespace kdscope::core {

namespace {

using GetThreads = int (*)();
using SetThreads = void (*)(int);

GetThreads getter() {
  static const auto fn = reinterpret_cast<GetThreads>(::dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  return fn;
}

SetThreads setter() {
  static const auto fn = reinterpret_cast<SetThreads>(::dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  return fn;
}

} // namespace

void setOpenMpThreadsOfThisThread(int n) {
  static const auto set = reinterpret_cast<SetThreads>(::dlsym(RTLD_DEFAULT, "omp_set_num_threads"));
  if (set != nullptr && n >= 1) {
    set(n);
  }
}

int blasThreads() {
  const GetThreads get = getter();
  return get != nullptr ? get() : -1;
}

void setBlasThreads(int n) {
  if (const SetThreads set = setter(); set != nullptr && n >= 1) {
    set(n);
  }
}

SingleBlasThread::SingleBlasThread() : m_previous(blasThreads()) {
  if (m_previous > 1) {
    setBlasThreads(1);
  }
}

SingleBlasThread::~SingleBlasThread() {
  if (m_previous > 1) {
    setBlasThreads(m_previous);
  }
}

} // namespace kdscope::core
