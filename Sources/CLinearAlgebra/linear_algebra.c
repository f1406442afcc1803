#include "linear_algebra.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

// The Debian/Ubuntu sonames of libopenblas0 and liblapacke (what `make deps` installs).
static const char *const blas_names[] = {"libopenblas.so.0", "libopenblas.so"};
static const char *const lapacke_names[] = {"liblapacke.so.3", "liblapacke.so"};

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int loaded = 0;
static char error[512] = "";
static la_failure_handler failure = NULL;

static struct {
  void (*set_num_threads)(int);
  char *(*corename)(void);
  void (*dgemm)(CBLAS_ORDER, CBLAS_TRANSPOSE, CBLAS_TRANSPOSE, blasint, blasint, blasint, double, const double *,
                blasint, const double *, blasint, double, double *, blasint);
  void (*sgemm)(CBLAS_ORDER, CBLAS_TRANSPOSE, CBLAS_TRANSPOSE, blasint, blasint, blasint, float, const float *,
                blasint, const float *, blasint, float, float *, blasint);
  void (*dsyrk)(CBLAS_ORDER, CBLAS_UPLO, CBLAS_TRANSPOSE, blasint, blasint, double, const double *, blasint, double,
                double *, blasint);
  void (*ssyrk)(CBLAS_ORDER, CBLAS_UPLO, CBLAS_TRANSPOSE, blasint, blasint, float, const float *, blasint, float,
                float *, blasint);
  void (*dtrsm)(CBLAS_ORDER, CBLAS_SIDE, CBLAS_UPLO, CBLAS_TRANSPOSE, CBLAS_DIAG, blasint, blasint, double,
                const double *, blasint, double *, blasint);
  lapack_int (*dgesvdx)(int, char, char, char, lapack_int, lapack_int, double *, lapack_int, double, double,
                        lapack_int, lapack_int, lapack_int *, double *, double *, lapack_int, double *, lapack_int,
                        lapack_int *);
  lapack_int (*dsyevd)(int, char, char, lapack_int, double *, lapack_int, double *);
  lapack_int (*dgesdd)(int, char, lapack_int, lapack_int, double *, lapack_int, double *, double *, lapack_int,
                       double *, lapack_int);
  lapack_int (*dgeqrf)(int, lapack_int, lapack_int, double *, lapack_int, double *);
  lapack_int (*dorgqr)(int, lapack_int, lapack_int, lapack_int, double *, lapack_int, const double *);
  lapack_int (*dgesv)(int, lapack_int, lapack_int, double *, lapack_int, lapack_int *, double *, lapack_int);
  lapack_int (*dpstrf)(int, char, lapack_int, double *, lapack_int, lapack_int *, lapack_int *, double);
} fn;

static void *open_first(const char *const *names, int count) {
  for (int i = 0; i < count; i++) {
    void *handle = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (handle) return handle;
  }
  snprintf(error, sizeof error, "cannot load BLAS/LAPACK: %s (install libopenblas0 and liblapacke3)", dlerror());
  return NULL;
}

#define RESOLVE(handle, field, symbol)                                                   \
  do {                                                                                   \
    *(void **)&fn.field = dlsym(handle, symbol);                                         \
    if (!fn.field) {                                                                     \
      snprintf(error, sizeof error, "%s not found in BLAS/LAPACK: %s", symbol, dlerror()); \
      return;                                                                            \
    }                                                                                    \
  } while (0)

// The OpenBLAS kernels this CPU's features allow, widest first, by names every OpenBLAS since
// 0.3.0 knows. Debian's OpenBLAS (0.3.21) picks its kernels by CPU model and runs models newer
// than itself (Emerald Rapids, family 6 model 0xCF) on its SSE3 "Prescott" kernels: a third of
// the speed of the AVX-512 ones on the same CPU.
static const char *coretype_for_cpu(void) {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512bw")
      && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl")) {
    return "SKYLAKEX";
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return __builtin_cpu_is("amd") ? "ZEN" : "HASWELL";
#endif
  return NULL;
}

// The system's OpenBLAS gets the kernels the CPU's features allow, unless the user named a core
// type (OPENBLAS_CORETYPE) or another build (FEDLORA_OPENBLAS), whose own detection then stands.
// Not a constructor: setenv before Swift has read the command line loses its arguments.
static pthread_once_t kernels_once = PTHREAD_ONCE_INIT;
static const char *chosen_coretype = NULL;

static void choose_kernels_once(void) {
  if (getenv("FEDLORA_OPENBLAS") || getenv("OPENBLAS_CORETYPE")) return;
  chosen_coretype = coretype_for_cpu();
  if (chosen_coretype) setenv("OPENBLAS_CORETYPE", chosen_coretype, 0);
}

void la_choose_kernels(void) { pthread_once(&kernels_once, choose_kernels_once); }

const char *la_chosen_coretype(void) {
  la_choose_kernels();
  return chosen_coretype;
}

static void load_once(void) {
  la_choose_kernels();
  // FEDLORA_OPENBLAS names another OpenBLAS build (a path or soname) instead of the system's.
  const char *chosen = getenv("FEDLORA_OPENBLAS");
  const char *const override[] = {chosen};
  void *blas = chosen ? open_first(override, 1) : open_first(blas_names, 2);
  if (!blas) return;
  void *lapacke = open_first(lapacke_names, 2);
  if (!lapacke) return;
  RESOLVE(blas, set_num_threads, "openblas_set_num_threads");
  RESOLVE(blas, corename, "openblas_get_corename");
  RESOLVE(blas, dgemm, "cblas_dgemm");
  RESOLVE(blas, sgemm, "cblas_sgemm");
  RESOLVE(blas, dsyrk, "cblas_dsyrk");
  RESOLVE(blas, ssyrk, "cblas_ssyrk");
  RESOLVE(blas, dtrsm, "cblas_dtrsm");
  RESOLVE(lapacke, dgesvdx, "LAPACKE_dgesvdx");
  RESOLVE(lapacke, dsyevd, "LAPACKE_dsyevd");
  RESOLVE(lapacke, dgesdd, "LAPACKE_dgesdd");
  RESOLVE(lapacke, dgeqrf, "LAPACKE_dgeqrf");
  RESOLVE(lapacke, dorgqr, "LAPACKE_dorgqr");
  RESOLVE(lapacke, dgesv, "LAPACKE_dgesv");
  RESOLVE(lapacke, dpstrf, "LAPACKE_dpstrf");
  // fedlora runs layers in parallel itself: BLAS threads on top would only spin and contend.
  fn.set_num_threads(1);
  loaded = 1;
}

int la_load(void) {
  pthread_once(&once, load_once);
  return loaded ? 0 : -1;
}

const char *la_load_error(void) { return error; }

void la_set_failure_handler(la_failure_handler handler) { failure = handler; }

static pthread_mutex_t failing = PTHREAD_MUTEX_INITIALIZER;

static void require(void) {
  if (la_load() == 0) return;
  // The first thread to get here reports and exits; any other waits here for that exit.
  pthread_mutex_lock(&failing);
  if (failure) failure(error);
  fprintf(stderr, "fedlora: error: %s\n", error);
  exit(1);
}

void la_set_num_threads(int threads) { require(); fn.set_num_threads(threads); }

const char *la_core_name(void) { require(); return fn.corename(); }

void la_dgemm(CBLAS_ORDER order, CBLAS_TRANSPOSE transa, CBLAS_TRANSPOSE transb, blasint m, blasint n, blasint k,
              double alpha, const double *a, blasint lda, const double *b, blasint ldb, double beta, double *c,
              blasint ldc) {
  require();
  fn.dgemm(order, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void la_sgemm(CBLAS_ORDER order, CBLAS_TRANSPOSE transa, CBLAS_TRANSPOSE transb, blasint m, blasint n, blasint k,
              float alpha, const float *a, blasint lda, const float *b, blasint ldb, float beta, float *c,
              blasint ldc) {
  require();
  fn.sgemm(order, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void la_dsyrk(CBLAS_ORDER order, CBLAS_UPLO uplo, CBLAS_TRANSPOSE trans, blasint n, blasint k, double alpha,
              const double *a, blasint lda, double beta, double *c, blasint ldc) {
  require();
  fn.dsyrk(order, uplo, trans, n, k, alpha, a, lda, beta, c, ldc);
}

void la_ssyrk(CBLAS_ORDER order, CBLAS_UPLO uplo, CBLAS_TRANSPOSE trans, blasint n, blasint k, float alpha,
              const float *a, blasint lda, float beta, float *c, blasint ldc) {
  require();
  fn.ssyrk(order, uplo, trans, n, k, alpha, a, lda, beta, c, ldc);
}

void la_dtrsm(CBLAS_ORDER order, CBLAS_SIDE side, CBLAS_UPLO uplo, CBLAS_TRANSPOSE trans, CBLAS_DIAG diag, blasint m,
              blasint n, double alpha, const double *a, blasint lda, double *b, blasint ldb) {
  require();
  fn.dtrsm(order, side, uplo, trans, diag, m, n, alpha, a, lda, b, ldb);
}

lapack_int la_dgesvdx(int layout, char jobu, char jobvt, char range, lapack_int m, lapack_int n, double *a,
                      lapack_int lda, double vl, double vu, lapack_int il, lapack_int iu, lapack_int *ns, double *s,
                      double *u, lapack_int ldu, double *vt, lapack_int ldvt, lapack_int *superb) {
  require();
  return fn.dgesvdx(layout, jobu, jobvt, range, m, n, a, lda, vl, vu, il, iu, ns, s, u, ldu, vt, ldvt, superb);
}

lapack_int la_dsyevd(int layout, char jobz, char uplo, lapack_int n, double *a, lapack_int lda, double *w) {
  require();
  return fn.dsyevd(layout, jobz, uplo, n, a, lda, w);
}

lapack_int la_dgesdd(int layout, char jobz, lapack_int m, lapack_int n, double *a, lapack_int lda, double *s,
                     double *u, lapack_int ldu, double *vt, lapack_int ldvt) {
  require();
  return fn.dgesdd(layout, jobz, m, n, a, lda, s, u, ldu, vt, ldvt);
}

lapack_int la_dgeqrf(int layout, lapack_int m, lapack_int n, double *a, lapack_int lda, double *tau) {
  require();
  return fn.dgeqrf(layout, m, n, a, lda, tau);
}

lapack_int la_dorgqr(int layout, lapack_int m, lapack_int n, lapack_int k, double *a, lapack_int lda,
                     const double *tau) {
  require();
  return fn.dorgqr(layout, m, n, k, a, lda, tau);
}

lapack_int la_dgesv(int layout, lapack_int n, lapack_int nrhs, double *a, lapack_int lda, lapack_int *ipiv,
                    double *b, lapack_int ldb) {
  require();
  return fn.dgesv(layout, n, nrhs, a, lda, ipiv, b, ldb);
}

lapack_int la_dpstrf(int layout, char uplo, lapack_int n, double *a, lapack_int lda, lapack_int *piv,
                     lapack_int *rank, double tol) {
  require();
  return fn.dpstrf(layout, uplo, n, a, lda, piv, rank, tol);
}
