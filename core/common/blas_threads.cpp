#include "core/common/blas_threads.h"

#include <dlfcn.h>

#include <cstddef>
#include <mutex>

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

namespace {

/// The scopes alive in the process and the count the first one found.
struct SingleScopes {
  std::mutex mutex;
  int alive = 0;
  int previous = -1;
};

SingleScopes& singleScopes() {
  static SingleScopes scopes;
  return scopes;
}

} // namespace

SingleBlasThread::SingleBlasThread() {
  SingleScopes& s = singleScopes();
  const std::lock_guard<std::mutex> lock(s.mutex);
  if (s.alive++ == 0) {
    s.previous = blasThreads();
    if (s.previous > 1) {
      setBlasThreads(1);
    }
  }
}

SingleBlasThread::~SingleBlasThread() {
  SingleScopes& s = singleScopes();
  const std::lock_guard<std::mutex> lock(s.mutex);
  if (--s.alive == 0 && s.previous > 1) {
    setBlasThreads(s.previous);
  }
}

namespace {

using Dgemm = void (*)(const char*, const char*, const int*, const int*, const int*, const double*, const double*,
                       const int*, const double*, const int*, const double*, double*, const int*);

Dgemm dgemmFunction() {
  static const auto fn = reinterpret_cast<Dgemm>(::dlsym(RTLD_DEFAULT, "dgemm_"));
  return fn;
}

using Dsyrk = void (*)(const char*, const char*, const int*, const int*, const double*, const double*, const int*,
                       const double*, double*, const int*);

Dsyrk dsyrkFunction() {
  static const auto fn = reinterpret_cast<Dsyrk>(::dlsym(RTLD_DEFAULT, "dsyrk_"));
  return fn;
}

} // namespace

void dgemm(bool transA, bool transB, int m, int n, int k, double alpha, const double* a, int lda, const double* b,
           int ldb, double beta, double* c, int ldc) {
  if (const Dgemm fn = dgemmFunction(); fn != nullptr) {
    const char ta = transA ? 'T' : 'N';
    const char tb = transB ? 'T' : 'N';
    fn(&ta, &tb, &m, &n, &k, &alpha, a, &lda, b, &ldb, &beta, c, &ldc);
    return;
  }
  dgemmLoops(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void dgemmLoops(bool transA, bool transB, int m, int n, int k, double alpha, const double* a, int lda,
                const double* b, int ldb, double beta, double* c, int ldc) {
  for (int j = 0; j < n; ++j) {
    for (int i = 0; i < m; ++i) {
      double sum = 0.0;
      for (int l = 0; l < k; ++l) {
        const double av = transA ? a[l + static_cast<std::ptrdiff_t>(i) * lda] : a[i + static_cast<std::ptrdiff_t>(l) * lda];
        const double bv = transB ? b[j + static_cast<std::ptrdiff_t>(l) * ldb] : b[l + static_cast<std::ptrdiff_t>(j) * ldb];
        sum += av * bv;
      }
      double& out = c[i + static_cast<std::ptrdiff_t>(j) * ldc];
      out = beta == 0.0 ? alpha * sum : alpha * sum + beta * out;
    }
  }
}

void dsyrkLower(bool transA, int n, int k, double alpha, const double* a, int lda, double beta, double* c, int ldc) {
  if (const Dsyrk fn = dsyrkFunction(); fn != nullptr) {
    const char uplo = 'L';
    const char trans = transA ? 'T' : 'N';
    fn(&uplo, &trans, &n, &k, &alpha, a, &lda, &beta, c, &ldc);
    return;
  }
  dsyrkLowerLoops(transA, n, k, alpha, a, lda, beta, c, ldc);
}

void dsyrkLowerLoops(bool transA, int n, int k, double alpha, const double* a, int lda, double beta, double* c,
                     int ldc) {
  // Element (i, l) of op(A) (n x k): A(i, l) without transA, A(l, i) with it.
  const auto at = [&](int i, int l) {
    return transA ? a[l + static_cast<std::ptrdiff_t>(i) * lda] : a[i + static_cast<std::ptrdiff_t>(l) * lda];
  };
  for (int j = 0; j < n; ++j) {
    for (int i = j; i < n; ++i) {
      double sum = 0.0;
      for (int l = 0; l < k; ++l) {
        sum += at(i, l) * at(j, l);
      }
      double& out = c[i + static_cast<std::ptrdiff_t>(j) * ldc];
      out = beta == 0.0 ? alpha * sum : alpha * sum + beta * out;
    }
  }
}

} // namespace kdscope::core
