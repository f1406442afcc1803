// BLAS and LAPACK for fedlora, loaded on first use: OpenBLAS (and its Fortran runtime) is
// mapped and its threads started only when a command computes, so a command that does not
// (`--version`, header-only `inspect`) pays nothing for it. Each `la_` function has the
// signature of the CBLAS / LAPACKE function it forwards to. FEDLORA_OPENBLAS names another
// OpenBLAS library to load; else an executable with lib/fedlora/libscipy_openblas.so beside its
// bin/ folder (the wheel's and the release tarball's layout) loads that one; else the system's.
#ifndef FEDLORA_LINEAR_ALGEBRA_H
#define FEDLORA_LINEAR_ALGEBRA_H

#include <cblas.h>
#include <lapacke.h>

// Loads the libraries if not loaded yet; 0 on success, else -1 with `la_load_error()` saying why.
int la_load(void);
const char *la_load_error(void);

// The functions below need the libraries loaded: callers check la_load() first (Swift:
// LinearAlgebra.load(), which throws); using one without that is a programming error, which
// aborts with the reason rather than calling through a null pointer.

void la_set_num_threads(int threads);

// When neither OPENBLAS_CORETYPE nor FEDLORA_OPENBLAS is set, sets OPENBLAS_CORETYPE to the widest
// kernels the CPU's features allow (SKYLAKEX, HASWELL or ZEN) for the system's OpenBLAS, whose own
// detection falls back to SSE3 kernels on CPU models newer than it. Once; loading calls it, and a
// program calls it early (after reading its arguments, before its threads) to keep setenv off
// the threads that first use BLAS.
void la_choose_kernels(void);
// The core type la_choose_kernels set, NULL when it set none (the user's, or no fitting one).
const char *la_chosen_coretype(void);
// The kernels OpenBLAS runs (its `openblas_get_corename`: "SkylakeX", "Haswell", ...).
const char *la_core_name(void);

// What was loaded: each library's path, where the choice came from ("FEDLORA_OPENBLAS",
// "bundled" or "system"), the symbol prefix ("scipy_" or ""), `openblas_get_config` ("" when the
// build lacks it), `openblas_get_corename` and OPENBLAS_CORETYPE (NULL when unset). Loads the libraries; -1 (see la_load_error) when
// they cannot be loaded. The strings live as long as the process.
typedef struct {
  const char *blas_path;
  const char *lapacke_path;
  const char *origin;
  const char *symbol_prefix;
  const char *config;
  const char *core_name;
  const char *coretype_variable;
} la_info;
int la_library_info(la_info *info);

void la_dgemm(CBLAS_ORDER order, CBLAS_TRANSPOSE transa, CBLAS_TRANSPOSE transb, blasint m, blasint n, blasint k,
              double alpha, const double *a, blasint lda, const double *b, blasint ldb, double beta, double *c, blasint ldc);
void la_sgemm(CBLAS_ORDER order, CBLAS_TRANSPOSE transa, CBLAS_TRANSPOSE transb, blasint m, blasint n, blasint k,
              float alpha, const float *a, blasint lda, const float *b, blasint ldb, float beta, float *c, blasint ldc);
void la_dsyrk(CBLAS_ORDER order, CBLAS_UPLO uplo, CBLAS_TRANSPOSE trans, blasint n, blasint k,
              double alpha, const double *a, blasint lda, double beta, double *c, blasint ldc);
void la_ssyrk(CBLAS_ORDER order, CBLAS_UPLO uplo, CBLAS_TRANSPOSE trans, blasint n, blasint k,
              float alpha, const float *a, blasint lda, float beta, float *c, blasint ldc);

void la_dtrsm(CBLAS_ORDER order, CBLAS_SIDE side, CBLAS_UPLO uplo, CBLAS_TRANSPOSE trans, CBLAS_DIAG diag, blasint m,
              blasint n, double alpha, const double *a, blasint lda, double *b, blasint ldb);

lapack_int la_dgesvdx(int layout, char jobu, char jobvt, char range, lapack_int m, lapack_int n, double *a,
                      lapack_int lda, double vl, double vu, lapack_int il, lapack_int iu, lapack_int *ns, double *s,
                      double *u, lapack_int ldu, double *vt, lapack_int ldvt, lapack_int *superb);
lapack_int la_dsyevd(int layout, char jobz, char uplo, lapack_int n, double *a, lapack_int lda, double *w);
lapack_int la_dgesdd(int layout, char jobz, lapack_int m, lapack_int n, double *a, lapack_int lda, double *s,
                     double *u, lapack_int ldu, double *vt, lapack_int ldvt);
lapack_int la_dgeqrf(int layout, lapack_int m, lapack_int n, double *a, lapack_int lda, double *tau);
lapack_int la_dorgqr(int layout, lapack_int m, lapack_int n, lapack_int k, double *a, lapack_int lda, const double *tau);
lapack_int la_dgesv(int layout, lapack_int n, lapack_int nrhs, double *a, lapack_int lda, lapack_int *ipiv,
                    double *b, lapack_int ldb);
lapack_int la_dpstrf(int layout, char uplo, lapack_int n, double *a, lapack_int lda, lapack_int *piv,
                     lapack_int *rank, double tol);

#endif
