// dladdr
#define _GNU_SOURCE
#include "linear_algebra.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// The Debian/Ubuntu sonames of libopenblas0 and liblapacke (what `make deps` installs).
static const char *const blas_names[] = {"libopenblas.so.0", "libopenblas.so"};
static const char *const lapacke_names[] = {"liblapacke.so.3", "liblapacke.so"};

// The OpenBLAS that fedlora's wheel and release tarball carry, in lib/fedlora/ beside the
// executable's bin/: scipy-openblas (OpenBLAS with its LAPACKE and Fortran runtime in one
// library, every symbol prefixed `scipy_`). A source build has none, and loads the system's.
static const char bundled_relative[] = "/../lib/fedlora/libscipy_openblas.so";
static const char scipy_prefix[] = "scipy_";

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int loaded = 0;
static char error[512] = "";

// What was loaded, for `la_library_info`: where each library came from and the symbol prefix.
static const char *origin = NULL;
static char prefix[16] = "";

static struct {
  void (*set_num_threads)(int);
  char *(*corename)(void);
  char *(*config)(void);  // optional: openblas_get_config
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

// The bundled library's path when the file is there (else ""), from /proc/self/exe: found
// once, before any thread, as la_choose_kernels asks.
static pthread_once_t bundled_once = PTHREAD_ONCE_INIT;
static char bundled[4096] = "";

static void find_bundled_once(void) {
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return;
  exe[n] = 0;
  char *slash = strrchr(exe, '/');
  if (!slash) return;
  *slash = 0;
  char path[sizeof bundled];
  if (snprintf(path, sizeof path, "%s%s", exe, bundled_relative) >= (int)sizeof path) return;
  // Its real path, so that `--version --verbose` names the file without bin/../ in it.
  if (access(path, R_OK) == 0 && !realpath(path, bundled)) memcpy(bundled, path, sizeof path);
}

static const char *bundled_library(void) {
  pthread_once(&bundled_once, find_bundled_once);
  return bundled[0] ? bundled : NULL;
}

// `symbol` with the library's prefix (`scipy_cblas_dgemm` in scipy-openblas).
static void *resolve(void *handle, const char *symbol) {
  char name[128];
  snprintf(name, sizeof name, "%s%s", prefix, symbol);
  return dlsym(handle, name);
}

#define RESOLVE(handle, field, symbol)                                                                   \
  do {                                                                                                   \
    *(void **)&fn.field = resolve(handle, symbol);                                                       \
    if (!fn.field) {                                                                                     \
      snprintf(error, sizeof error, "%s%s not found in BLAS/LAPACK: %s", prefix, symbol, dlerror());     \
      return;                                                                                            \
    }                                                                                                    \
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
  // The bundled OpenBLAS (0.3.34 or later) knows current CPUs: its own detection stands too.
  if (getenv("FEDLORA_OPENBLAS") || getenv("OPENBLAS_CORETYPE") || bundled_library()) return;
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
  // FEDLORA_OPENBLAS names another OpenBLAS build (a path or soname) instead of the system's;
  // else the bundled one, when this executable has one beside it.
  const char *chosen = getenv("FEDLORA_OPENBLAS");
  const char *bundle = bundled_library();
  const char *const override[] = {chosen};
  origin = chosen ? "FEDLORA_OPENBLAS" : bundle ? "bundled" : "system";
  void *blas = chosen   ? open_first(override, 1)
               : bundle ? dlopen(bundle, RTLD_NOW | RTLD_LOCAL)
                        : open_first(blas_names, 2);
  if (!blas && bundle && !chosen) {
    snprintf(error, sizeof error,
             "cannot load the OpenBLAS bundled with fedlora: %s (reinstall fedlora, or name another OpenBLAS in "
             "FEDLORA_OPENBLAS)", dlerror());
  }
  if (!blas) return;
  // scipy-openblas prefixes every symbol and carries its own LAPACKE; a plain OpenBLAS is
  // paired with the system's LAPACKE, as before.
  if (!dlsym(blas, "openblas_set_num_threads") && dlsym(blas, "scipy_openblas_set_num_threads")) {
    memcpy(prefix, scipy_prefix, sizeof scipy_prefix);
  }
  void *lapacke = prefix[0] ? blas : open_first(lapacke_names, 2);
  if (!lapacke) return;
  *(void **)&fn.config = resolve(blas, "openblas_get_config");
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

// Every caller has loaded the libraries (la_load() == 0) before computing: a failure to load
// is an error the library's caller handles, never an exit. Reaching a function without that
// check is a bug, stopped here instead of calling through a null pointer.
static void require(void) {
  if (la_load() == 0) return;
  fprintf(stderr, "fedlora: internal error: BLAS/LAPACK used before they were loaded (%s)\n", error);
  abort();
}

void la_set_num_threads(int threads) { require(); fn.set_num_threads(threads); }

const char *la_core_name(void) { require(); return fn.corename(); }

// The file a resolved function was loaded from (its library's path as the loader found it).
static const char *library_of(void *function) {
  Dl_info info;
  return function && dladdr(function, &info) && info.dli_fname ? info.dli_fname : "";
}

int la_library_info(la_info *info) {
  if (la_load() != 0) return -1;
  info->blas_path = library_of(*(void **)&fn.dgemm);
  info->lapacke_path = library_of(*(void **)&fn.dgesvdx);
  info->origin = origin;
  info->symbol_prefix = prefix;
  info->config = fn.config ? fn.config() : "";
  info->core_name = fn.corename();
  info->coretype_variable = getenv("OPENBLAS_CORETYPE");
  return 0;
}

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
