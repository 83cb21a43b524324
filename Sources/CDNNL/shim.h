#ifndef SWIFTRAIN_CDNNL_SHIM_H
#define SWIFTRAIN_CDNNL_SHIM_H
// oneDNN (Debian's libdnnl-dev): its matmul primitive, one of the two bf16 GEMM backends.
#include <oneapi/dnnl/dnnl.h>
#endif
