/*
 * flash_dispatch.cu - the one place that decides which fused attention kernel serves a call.
 *
 *   dtype      head dims (max(D, Dv))     layout                                kernel
 *   F16/BF16   D, Dv multiples of 8,      q/k/v 16-byte aligned, their batch,   tensor core, padded
 *              <= 256                     head and row strides multiples of 8   head dim DP in
 *                                                                               {32,64,96,128,160,
 *                                                                               192,256}
 *   F16/BF16   any other D, Dv <= 256     any (last dim contiguous)             fp32 SIMT, DM in
 *   F32        D, Dv <= 256               any                                   {32,64,128,256}
 *   any        D or Dv > 256                                                    NOT_SUPPORTED
 * Dv != D is served by the same kernels (both padded to the larger one; the padding is zero and
 * its k-steps / output blocks are skipped). Also NOT_SUPPORTED: devices before sm_80, and shapes
 * past the kernels' 32-bit row indexing or the grid limits (B or Hk > 65535).
 *
 * Split-KV (decode): when the blocks of a call (row tiles x Hk x B) fill less than 0.8 of the
 * SMs and there are at least 4 key tiles, the keys are split so that about two blocks per SM run,
 * each split keeping at least 2 key tiles (capped at 128 splits). Each split writes fp32 partial
 * o and lse into the context's workspace (splits x B x H x Sq x (Dv + 1) floats, reused across
 * calls), and the combine kernel merges them with seqk_attention_merge's math. The workspace is
 * planned up front and taken from an arena (host/device.h): seqk__cuda_attention_fused opens its
 * own; a caller that already holds one (an op running attention inside) adds
 * seqk__cuda_attention_fused_workspace to its plan and calls seqk__cuda_attention_fused_in.
 * seqk__cuda_attention_fused_force (tests only) overrides the kernel and the split count.
 */
#include "flash_attention.cuh"

#include "device.h"
#include "launchers.h"

#include <stdint.h>
#include <string.h>

namespace {

int g_force_kernel = 0;   /* 0 automatic, 1 SIMT, 2 tensor core where it applies */
int g_force_splits = 0;   /* 0 automatic, n >= 1: at most n */

/* Stride of dim d; 0 for a dim of extent 1, whose index is always 0. */
int64_t eff_stride(const seqk_tensor *t, int d) { return t->shape[d] > 1 ? t->stride[d] : 0; }

/* Base 16-byte aligned and the batch, head and row strides multiples of `elems` elements. */
bool rows_aligned(const seqk_tensor *t, int64_t elems) {
  if (((uintptr_t)t->data & 15) != 0) return false;
  for (int d = 0; d < 3; ++d)
    if (eff_stride(t, d) % elems != 0) return false;
  return true;
}

int round_tc_dim(int64_t d) {
  static const int dims[] = {32, 64, 96, 128, 160, 192, 256};
  for (int x : dims)
    if (d <= x) return x;
  return 0;
}

int round_simt_dim(int64_t d) {
  static const int dims[] = {32, 64, 128, 256};
  for (int x : dims)
    if (d <= x) return x;
  return 0;
}

}  // namespace

extern "C" void seqk__cuda_attention_fused_force(int kernel, int splits) {
  g_force_kernel = kernel;
  g_force_splits = splits;
}

namespace {

/* Everything one call does, decided before anything is launched. */
struct fused_plan {
  bool empty;                /* o has no element: nothing to launch */
  bool tc;                   /* tensor-core kernel (else SIMT) */
  int dpad;                  /* instantiated head dim the kernel runs at */
  int64_t part_rows;         /* splits * B * H * Sq when splitting, else 0 */
  size_t ws_bytes;           /* workspace the split partials take (arena-rounded) */
  seqk_dtype dtype;
  seqk_flash::params p;
};

seqk_status make_plan(seqk_context_t ctx, const seqk_attention_params *params,
                      const seqk_tensor *q, const seqk_tensor *k, const seqk_tensor *v,
                      const seqk_tensor *o, const seqk_tensor *lse, fused_plan *pl) {
  static const char op[] = "attention";
  const seqk_attention_params defaults = {0.0f, 0, SEQK_ATTENTION_ALGO_AUTO, NULL, NULL};
  const seqk_attention_params *pa = params ? params : &defaults;
  const int64_t B = q->shape[0], H = q->shape[1], Sq = q->shape[2], D = q->shape[3];
  const int64_t Hk = k->shape[1], Sk = k->shape[2], Dv = v->shape[3];
  memset(pl, 0, sizeof *pl);
  pl->empty = B == 0 || H == 0 || Sq == 0;   /* o and lse have no element */
  if (pl->empty) return SEQK_STATUS_SUCCESS;

  const int64_t dmax = D > Dv ? D : Dv;
  if (dmax > 256)
    return seqk__fail(ctx, SEQK_STATUS_NOT_SUPPORTED,
                      "%s: the fused kernels serve head dims up to 256 (D=%lld, Dv=%lld)", op,
                      (long long)D, (long long)Dv);
  const int64_t group = H / Hk;
  if (Sk > INT32_MAX / 2 || Sq > INT32_MAX / 2 || group * Sq > INT32_MAX / 2)
    return seqk__fail(ctx, SEQK_STATUS_NOT_SUPPORTED,
                      "%s: the fused kernels index rows in 32 bits (Sq=%lld, Sk=%lld, H/Hk=%lld)",
                      op, (long long)Sq, (long long)Sk, (long long)group);
  if (B > 65535 || Hk > 65535)
    return seqk__fail(ctx, SEQK_STATUS_NOT_SUPPORTED,
                      "%s: the fused kernels' grid holds at most 65535 batches and key heads "
                      "(B=%lld, Hk=%lld)", op, (long long)B, (long long)Hk);

  int dev = 0, major = 0, minor = 0, sms = 0;
  cudaError_t err = cudaGetDevice(&dev);
  if (err == cudaSuccess) err = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev);
  if (err == cudaSuccess) err = cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev);
  if (err == cudaSuccess) err = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
  if (err != cudaSuccess)
    return seqk__fail(ctx, SEQK_STATUS_DEVICE_ERROR, "%s: querying the device failed: %s", op,
                      cudaGetErrorString(err));
  if (major < 8)
    return seqk__fail(ctx, SEQK_STATUS_NOT_SUPPORTED,
                      "%s: the fused kernels need sm_80 or newer (the device is sm_%d%d)", op,
                      major, minor);

  const seqk_dtype dtype = q->dtype;
  bool tc = dtype != SEQK_DTYPE_F32 && D % 8 == 0 && Dv % 8 == 0 && rows_aligned(q, 8) &&
            rows_aligned(k, 8) && rows_aligned(v, 8);
  if (g_force_kernel == 1) tc = false;
  const int dpad = tc ? round_tc_dim(dmax) : round_simt_dim(dmax);
  const seqk_flash::tile_shape shape = tc ? seqk_flash::tc_shape(dpad) : seqk_flash::simt_shape(dpad);
  pl->tc = tc;
  pl->dpad = dpad;
  pl->dtype = dtype;

  seqk_flash::params &p = pl->p;
  p.q = q->data;
  p.k = k->data;
  p.v = v->data;
  p.o = o->data;
  p.lse = seqk__present(lse) ? static_cast<float *>(lse->data) : nullptr;
  p.part_o = p.part_lse = nullptr;
  p.q_sb = eff_stride(q, 0); p.q_sh = eff_stride(q, 1); p.q_ss = eff_stride(q, 2);
  p.k_sb = eff_stride(k, 0); p.k_sh = eff_stride(k, 1); p.k_ss = eff_stride(k, 2);
  p.v_sb = eff_stride(v, 0); p.v_sh = eff_stride(v, 1); p.v_ss = eff_stride(v, 2);
  p.o_sb = eff_stride(o, 0); p.o_sh = eff_stride(o, 1); p.o_ss = eff_stride(o, 2);
  p.l_sb = p.l_sh = p.l_ss = 0;
  if (p.lse) {
    p.l_sb = eff_stride(lse, 0);
    p.l_sh = eff_stride(lse, 1);
    p.l_ss = eff_stride(lse, 2);
  }
  p.B = (int)B; p.H = (int)H; p.Hk = (int)Hk; p.group = (int)group;
  p.Sq = (int)Sq; p.Sk = (int)Sk; p.D = (int)D; p.Dv = (int)Dv;
  p.rows = (int)(group * Sq);
  p.causal = pa->causal != 0;
  const double scale = pa->scale != 0.0f ? (double)pa->scale : 1.0 / sqrt((double)D);
  p.scale_log2 = (float)(scale * 1.4426950408889634);   /* log2(e) */
  p.seqlens_q = pa->seqlens_q;
  p.seqlens_k = pa->seqlens_k;
  p.in_vec = dtype == SEQK_DTYPE_F32 && D % 4 == 0 && Dv % 4 == 0 && rows_aligned(q, 4) &&
             rows_aligned(k, 4) && rows_aligned(v, 4);
  p.o_vec = rows_aligned(o, 8);

  /* Split-KV when the grid would leave SMs idle. */
  const int64_t row_tiles = (p.rows + shape.bm - 1) / shape.bm;
  const int64_t blocks = row_tiles * Hk * B;
  const int64_t key_tiles = (Sk + shape.bn - 1) / shape.bn;
  int64_t splits = 1;
  if (g_force_splits > 0) {
    splits = g_force_splits;
  } else if (blocks * 5 < (int64_t)sms * 4 && key_tiles >= 4) {
    splits = ((int64_t)2 * sms + blocks - 1) / blocks;
    if (splits > key_tiles / 2) splits = key_tiles / 2;
    if (splits > 128) splits = 128;
  }
  if (splits > key_tiles) splits = key_tiles;
  if ((B * H * Sq + 3) / 4 > INT32_MAX) splits = 1;   /* the combine grid has one warp per row */
  if (splits < 1) splits = 1;
  const int64_t tiles_per_split = (key_tiles + splits - 1) / splits;
  p.keys_per_split = (int)(tiles_per_split * shape.bn);
  if (splits > 1) splits = (key_tiles + tiles_per_split - 1) / tiles_per_split;   /* none empty */
  p.splits = (int)splits;
  if (row_tiles * splits > INT32_MAX)
    return seqk__fail(ctx, SEQK_STATUS_NOT_SUPPORTED, "%s: too many row tiles for the grid (%lld)",
                      op, (long long)(row_tiles * splits));
  if (splits > 1) {
    pl->part_rows = splits * B * H * Sq;
    pl->ws_bytes = seqk__ws_sum(seqk__ws_elems(seqk__mul_sat(pl->part_rows, Dv), sizeof(float)),
                                seqk__ws_elems(pl->part_rows, sizeof(float)));
  }
  return SEQK_STATUS_SUCCESS;
}

seqk_status run_plan(seqk_context_t ctx, seqk_arena *arena, fused_plan *pl) {
  static const char op[] = "attention";
  if (pl->empty) return SEQK_STATUS_SUCCESS;
  seqk_flash::params &p = pl->p;
  if (p.splits > 1) {
    void *po = nullptr, *pl_ = nullptr;
    SEQK_TRY(seqk__arena_take(ctx, op, arena,
                              seqk__ws_elems(seqk__mul_sat(pl->part_rows, p.Dv), sizeof(float)), &po));
    SEQK_TRY(seqk__arena_take(ctx, op, arena, seqk__ws_elems(pl->part_rows, sizeof(float)), &pl_));
    p.part_o = static_cast<float *>(po);
    p.part_lse = static_cast<float *>(pl_);
  }
  const cudaStream_t stream = (cudaStream_t)ctx->stream;
  (void)cudaGetLastError();   /* an earlier, unrelated error must not be blamed on this launch */
  cudaError_t err;
  if (pl->tc)
    err = pl->dtype == SEQK_DTYPE_F16 ? seqk_flash::launch_tc_f16(p, pl->dpad, stream)
                                      : seqk_flash::launch_tc_bf16(p, pl->dpad, stream);
  else
    err = seqk_flash::launch_simt(p, pl->dtype, pl->dpad, stream);
  if (err == cudaSuccess && p.splits > 1) err = seqk_flash::launch_combine(p, pl->dtype, stream);
  if (err != cudaSuccess)
    return seqk__fail(ctx, SEQK_STATUS_DEVICE_ERROR, "%s: fused %s kernel launch failed: %s", op,
                      pl->tc ? "tensor-core" : "fp32", cudaGetErrorString(err));
  return SEQK_STATUS_SUCCESS;
}

}  // namespace

extern "C" seqk_status seqk__cuda_attention_fused_workspace(
    seqk_context_t ctx, const seqk_attention_params *params, const seqk_tensor *q,
    const seqk_tensor *k, const seqk_tensor *v, const seqk_tensor *o, size_t *bytes) {
  fused_plan pl;
  *bytes = 0;
  SEQK_TRY(make_plan(ctx, params, q, k, v, o, NULL, &pl));
  *bytes = pl.ws_bytes;
  return SEQK_STATUS_SUCCESS;
}

extern "C" seqk_status seqk__cuda_attention_fused_in(seqk_context_t ctx, struct seqk_arena *arena,
                                                     const seqk_attention_params *params,
                                                     const seqk_tensor *q, const seqk_tensor *k,
                                                     const seqk_tensor *v, const seqk_tensor *o,
                                                     const seqk_tensor *lse) {
  fused_plan pl;
  SEQK_TRY(make_plan(ctx, params, q, k, v, o, lse, &pl));
  return run_plan(ctx, arena, &pl);
}

extern "C" seqk_status seqk__cuda_attention_fused(seqk_context_t ctx,
                                                  const seqk_attention_params *params,
                                                  const seqk_tensor *q, const seqk_tensor *k,
                                                  const seqk_tensor *v, const seqk_tensor *o,
                                                  const seqk_tensor *lse) {
  fused_plan pl;
  SEQK_TRY(make_plan(ctx, params, q, k, v, o, lse, &pl));
  seqk_arena arena;
  SEQK_TRY(seqk__arena_open(ctx, "attention", pl.ws_bytes, &arena));
  return run_plan(ctx, &arena, &pl);
}
