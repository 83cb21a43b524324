#ifndef SWIFTRAIN_COPENBLAS_SHIM_H
#define SWIFTRAIN_COPENBLAS_SHIM_H
// Debian puts cblas.h under the openblas-pthread include directory that pkg-config names.
#include <cblas.h>
// Thread control is OpenBLAS-specific and not in every cblas.h.
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
// The kernel OpenBLAS chose at load time (DYNAMIC_ARCH builds pick one per CPU).
char* openblas_get_corename(void);
#endif
