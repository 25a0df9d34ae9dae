/*
 * tma_map.cu - seqk_tma_encode (tma_map.h): cuTensorMapEncodeTiled through the runtime's driver
 * entry point, looked up once. Host code only; the same source builds with nvcc (the real
 * library) and with the host compiler against the emulator (which answers the lookup with its own
 * encoder).
 */
#include "tma_map.h"

#include <cuda_runtime_api.h>

namespace {

typedef CUresult (*encode_tiled_fn)(CUtensorMap *, CUtensorMapDataType, cuuint32_t, void *,
                                    const cuuint64_t *, const cuuint64_t *, const cuuint32_t *,
                                    const cuuint32_t *, CUtensorMapInterleave, CUtensorMapSwizzle,
                                    CUtensorMapL2promotion, CUtensorMapFloatOOBfill);

struct resolved {
  encode_tiled_fn fn;
  cudaError_t err;
};

resolved resolve() {
  void *p = nullptr;
  cudaDriverEntryPointQueryResult q = cudaDriverEntryPointSymbolNotFound;
#if CUDART_VERSION >= 12050
  /* cuTensorMapEncodeTiled as introduced in CUDA 12.0 (its only version so far). */
  cudaError_t e =
      cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault, &q);
#else
  cudaError_t e = cudaGetDriverEntryPoint("cuTensorMapEncodeTiled", &p, cudaEnableDefault, &q);
#endif
  if (e != cudaSuccess) {
    (void)cudaGetLastError(); /* not this lookup's callers' error to see later */
    return resolved{nullptr, e == cudaErrorInvalidValue ? cudaErrorNotSupported : e};
  }
  if (q != cudaDriverEntryPointSuccess || !p) return resolved{nullptr, cudaErrorSymbolNotFound};
  return resolved{reinterpret_cast<encode_tiled_fn>(p), cudaSuccess};
}

const resolved &encoder() {
  static const resolved r = resolve(); /* initialised once, thread-safely (C++11) */
  return r;
}

}   // namespace

extern "C" cudaError_t seqk_tma_encode(CUtensorMap *map, CUtensorMapDataType dtype, uint32_t rank,
                                       const void *base, const uint64_t *dims,
                                       const uint64_t *strides_bytes, const uint32_t *box,
                                       CUtensorMapSwizzle swizzle) {
  if (!map || !base || !dims || !box || rank < 1 || rank > 5 || (rank > 1 && !strides_bytes))
    return cudaErrorInvalidValue;
  const resolved &r = encoder();
  if (!r.fn) return r.err;
  cuuint64_t gdim[5], gstride[4];
  cuuint32_t bdim[5], estride[5];
  for (uint32_t d = 0; d < rank; ++d) {
    gdim[d] = (cuuint64_t)dims[d];
    bdim[d] = (cuuint32_t)box[d];
    estride[d] = 1;
    if (d + 1 < rank) gstride[d] = (cuuint64_t)strides_bytes[d];
  }
  const CUresult c = r.fn(map, dtype, (cuuint32_t)rank, const_cast<void *>(base), gdim, gstride,
                          bdim, estride, CU_TENSOR_MAP_INTERLEAVE_NONE, swizzle,
                          CU_TENSOR_MAP_L2_PROMOTION_L2_128B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (c == CUDA_SUCCESS) return cudaSuccess;
  if (c == CUDA_ERROR_NOT_SUPPORTED) return cudaErrorNotSupported;
  return cudaErrorInvalidValue;
}
