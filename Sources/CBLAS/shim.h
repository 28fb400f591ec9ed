// The C interface to BLAS, from whichever provider Debian's alternatives select
// (OpenBLAS when installed, the reference BLAS otherwise). Provider-specific calls such as
// openblas_set_num_threads are looked up at run time, so any BLAS links.
#ifndef DLION_CBLAS_SHIM_H
#define DLION_CBLAS_SHIM_H
#include <cblas.h>
#endif
