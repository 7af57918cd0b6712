#pragma once
/// OpenBLAS's own thread pool, set at run time (Debian picks the BLAS through alternatives,
/// and only OpenBLAS has these entry points: with another BLAS every call here does
/// nothing). Process-wide, like LibTorch's intra-op pool (docs/architecture.md, "Threads").

namespace kdscope::core {

/// OpenBLAS's thread count now; -1 when the BLAS is not OpenBLAS.
int blasThreads();
/// Sets it (n >= 1); nothing when the BLAS is not OpenBLAS.
void setBlasThreads(int n);

/// The calling thread's OpenMP team size (OpenMP keeps it per thread): LibTorch's CPU ops and
/// oneDNN started from this thread use at most `n` threads. Nothing when no OpenMP runtime is
/// loaded. LibTorch sets a new thread's count on its first parallel call: call
/// at::get_num_threads() first.
void setOpenMpThreadsOfThisThread(int n);

/// While alive, OpenBLAS runs on one thread (the previous count is restored after). For
/// loops of small products, one example at a time, where waking the pool for each call costs
/// more than the call (bench/README.md, "OpenBLAS's pool and small products"). A product's
/// bits can depend on the thread count, so every computation that must agree with another
/// (the teacher cache and the teacher without it) runs under the same scope. Scopes may
/// overlap, on one thread or several (the analysis runs two lanes of passes at once): the
/// count goes to 1 when the first begins and back to what it was when the last ends.
class SingleBlasThread {
public:
  SingleBlasThread();
  ~SingleBlasThread();
  SingleBlasThread(const SingleBlasThread&) = delete;
  SingleBlasThread& operator=(const SingleBlasThread&) = delete;
};

/// C = alpha op(A) op(B) + beta C in BLAS's column-major terms (op: transposed when the flag
/// is set; A is m x k after op, B k x n, C m x n, leading dimensions as BLAS takes them), by
/// the dgemm_ of the BLAS LibTorch loaded (OpenBLAS here), found at run time like the thread
/// controls above; plain loops when the process has no dgemm_. beta = 0 ignores C's contents.
void dgemm(bool transA, bool transB, int m, int n, int k, double alpha, const double* a, int lda, const double* b,
           int ldb, double beta, double* c, int ldc);
/// The lower triangle (row >= column) of C = alpha A A^T + beta C (transA false; A n x k) or
/// C = alpha A^T A + beta C (transA true; A k x n), C n x n, column-major as BLAS's dsyrk_
/// (found at run time; plain loops without it). The strict upper triangle is not touched.
void dsyrkLower(bool transA, int n, int k, double alpha, const double* a, int lda, double beta, double* c, int ldc);
/// The same by plain loops (what dsyrkLower falls back to).
void dsyrkLowerLoops(bool transA, int n, int k, double alpha, const double* a, int lda, double beta, double* c,
                     int ldc);
/// The same product by plain loops (what dgemm falls back to).
void dgemmLoops(bool transA, bool transB, int m, int n, int k, double alpha, const double* a, int lda,
                const double* b, int ldb, double beta, double* c, int ldc);

} // namespace kdscope::core
