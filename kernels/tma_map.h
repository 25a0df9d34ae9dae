/*
 * tma_map.h - host-side encoding of Hopper TMA tensor maps (cuTensorMapEncodeTiled) for the
 * kernels' launchers. The driver function is reached through the runtime
 * (cudaGetDriverEntryPointByVersion, once, cached thread-safely), so the library never links
 * libcuda; cuda.h is included for its types only. The emulated build gets the emulator's encoder
 * the same way (emu/README.md, "Hopper TMA"). The kernel side is tma_load_{2,3,4}d in
 * primitives_sm90.cuh; pass the map as a `const __grid_constant__ CUtensorMap` kernel parameter
 * (or inside a __grid_constant__ params struct).
 */
#ifndef SEQK_KERNELS_TMA_MAP_H
#define SEQK_KERNELS_TMA_MAP_H

#include <cuda.h>
#include <cuda_runtime_api.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Encodes a tiled tensor map into *map (64-byte aligned; CUtensorMap's own alignment is).
     dtype          element type (CU_TENSOR_MAP_DATA_TYPE_FLOAT16, _BFLOAT16, _FLOAT32, ...)
     rank           1..5
     base           the tensor's global address, 16-byte aligned
     dims[rank]     extents in elements, innermost first, each 1..2^32
     strides_bytes  the byte strides of dims 1..rank-1 (rank-1 entries; multiples of 16, < 2^40;
                    NULL when rank is 1)
     box[rank]      the box copied per load, in elements, each 1..256; box[0] x element size a
                    multiple of 16 bytes, and at most the swizzle span (32/64/128) when swizzled
     swizzle        CU_TENSOR_MAP_SWIZZLE_NONE, _32B, _64B or _128B
   Element strides 1, no interleave, out-of-bounds elements read as zeros
   (CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE), L2 promotion 128B.
   Returns cudaSuccess; cudaErrorInvalidValue for a map the driver refuses (or a null argument);
   cudaErrorNotSupported (or the runtime's own error) when cuTensorMapEncodeTiled cannot be
   obtained, cudaErrorSymbolNotFound when the driver does not have it. */
cudaError_t seqk_tma_encode(CUtensorMap *map, CUtensorMapDataType dtype, uint32_t rank,
                            const void *base, const uint64_t *dims, const uint64_t *strides_bytes,
                            const uint32_t *box, CUtensorMapSwizzle swizzle);

#ifdef __cplusplus
}
#endif

#endif /* SEQK_KERNELS_TMA_MAP_H */
