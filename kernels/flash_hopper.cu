/*
 * flash_hopper.cu - the Hopper kernel's host side (flash_hopper.cuh): the K and V tensor maps and
 * the launch (seqk_flash::launch_hopper, called by flash_attention.cu's seqk_k_flash_launch when
 * the plan chose the kernel). The maps are encoded per call on the host (cuTensorMapEncodeTiled
 * through tma_map.h, no device work, nothing allocated), so a captured launch carries them.
 */
#include "flash_hopper.cuh"
#include "tma_map.h"

namespace seqk_flash {

namespace {

/* A tiled map over K or V seen as [B, Sk, Hk, cols] (innermost first: cols, Sk, Hk, B), or packed
   as [1, k_rows, Hk, cols] (the kernel adds each sequence's first row to its key coordinate), a
   box of 64 columns x bn rows, 128-byte swizzle. Dims of extent 1 carry stride 0 in the plan; TMA
   wants a stride for every dim, any 16-byte multiple serves one whose index is always 0. */
cudaError_t encode_kv_map(CUtensorMap *map, CUtensorMapDataType type, const void *base, int cols,
                          const params &p, int64_t ss, int64_t sh, int64_t sb, int bn) {
  const bool packed = p.k_start != nullptr;
  const uint64_t dims[4] = {(uint64_t)cols, (uint64_t)(packed ? p.k_rows : p.Sk), (uint64_t)p.Hk,
                            packed ? 1u : (uint64_t)p.B};
  const int64_t elems[3] = {ss, sh, sb};
  uint64_t strides[3];
  uint64_t span = (uint64_t)cols * 2;
  for (int d = 0; d < 3; ++d) {
    const uint64_t st = elems[d] > 0 ? (uint64_t)elems[d] * 2 : ((span + 15) / 16) * 16;
    strides[d] = st;
    span = st * dims[d + 1];
  }
  const uint32_t box[4] = {(uint32_t)kHpPanel, (uint32_t)bn, 1u, 1u};
  return seqk_tma_encode(map, type, 4, base, dims, strides, box, CU_TENSOR_MAP_SWIZZLE_128B);
}

}   // namespace

tile_shape hopper_shape(int dp) {
  return seqk_kernels::value_switch(hp_head_dims{}, dp, tile_shape{0, 0}, [&](auto D) {
    return tile_shape{kHpBM, hp_traits<decltype(D)::value>::BN};
  });
}

cudaError_t launch_hopper(const params &p, seqk_dtype dtype, int dp, cudaStream_t stream) {
  const tile_shape shape = hopper_shape(dp);
  if (shape.bn == 0) return cudaErrorInvalidValue;
  const CUtensorMapDataType type =
      dtype == SEQK_DTYPE_F16 ? hp_ops<__half>::kMapType : hp_ops<__nv_bfloat16>::kMapType;
  hopper_args a;
  memset(&a, 0, sizeof a);
  a.p = p;
  /* no keys: no tile is loaded (nor the maps prefetched), and K and V may have no address */
  if (p.k_start ? p.k_rows > 0 : p.Sk > 0) {
    cudaError_t e = encode_kv_map(&a.k_map, type, p.k, p.D, p, p.k_ss, p.k_sh, p.k_sb, shape.bn);
    if (e == cudaSuccess)
      e = encode_kv_map(&a.v_map, type, p.v, p.Dv, p, p.v_ss, p.v_sh, p.v_sb, shape.bn);
    if (e != cudaSuccess) return e;
  }
  return dtype == SEQK_DTYPE_F16 ? launch_hopper_f16(a, dp, stream)
                                 : launch_hopper_bf16(a, dp, stream);
}

}   // namespace seqk_flash
