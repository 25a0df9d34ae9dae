/*
 * flash_attention.cu - the one place that decides which fused attention kernel serves a call,
 * and launches it (seqk_k_flash_plan_call, seqk_k_flash_launch).
 *
 *   dtype      head dims (max(D, Dv))     layout                                kernel
 *   F16/BF16   D, Dv multiples of 8,      q/k/v 16-byte aligned, their batch,   tensor core, padded
 *              <= 256                     head and row strides multiples of 8   head dim DP in
 *                                                                               tc_head_dims
 *   F16/BF16   any other D, Dv <= 256     any (last dim contiguous)             fp32 SIMT, DM in
 *   F32        D, Dv <= 256               any                                   simt_head_dims
 *   any        D or Dv > 256                                                    not served
 * On a compute capability 9.0 device (H100/H200) the tensor-core calls go to the Hopper kernel
 * (flash_hopper.cuh: wgmma, TMA, warp specialization; head dims 64, 128, 256) except paged ones,
 * which stay on the sm_80 kernel (the Hopper kernel's TMA maps span one contiguous [B, Sk, Hk, D]
 * tensor, or the packed [T, Hk, D] one).
 * Dv != D is served by the same kernels (both padded to the larger one; the padding is zero and
 * its k-steps / output blocks are skipped). Also not served (each with its reason code): devices
 * before sm_80, and shapes past the kernels' 32-bit row indexing or the grid limits (B or
 * Hk > 65535).
 *
 * Split-KV (decode): when the blocks of a call (row tiles x Hk x B) fill less than 0.8 of the
 * SMs and there are at least 4 key tiles, the keys are split so that about two blocks per SM run,
 * each split keeping at least 2 key tiles (capped at 128 splits); each block then splits its
 * batch's own keys (seqlens_k, or the cache length) evenly, so a cache far longer than its
 * sequences still spreads every sequence over all splits. Each split writes fp32 partial
 * o and lse into scratch the host carves (splits x B x H x Sq x (Dv + 1) floats), and the combine
 * kernel merges them by merge.cuh's rule (seqk_attention_merge's math).
 */
#include "flash_attention.cuh"

#include <stdint.h>
#include <string.h>

namespace {

using namespace seqk_flash;

/* Stride of dim d; 0 for a dim of extent 1, whose index is always 0. */
int64_t eff_stride(int64_t extent, int64_t stride) { return extent > 1 ? stride : 0; }

/* Base 16-byte aligned and the batch, head and row strides multiples of `elems` elements. */
bool rows_aligned(const void *data, const int64_t stride[3], int64_t elems) {
  if (((uintptr_t)data & 15) != 0) return false;
  for (int d = 0; d < 3; ++d)
    if (stride[d] % elems != 0) return false;
  return true;
}

constexpr int64_t kMaxSplits = 128;

}   // namespace

extern "C" seqk_k_flash_support seqk_k_flash_plan_call(const seqk_k_flash_args *a, int sms,
                                                       int cc_major, seqk_k_flash_force force,
                                                       seqk_k_flash_plan *pl) {
  const int64_t B = a->B, H = a->H, Sq = a->Sq, D = a->D, Hk = a->Hk, Sk = a->Sk, Dv = a->Dv;
  memset(pl, 0, sizeof *pl);
  pl->empty = B == 0 || H == 0 || Sq == 0; /* o and lse have no element */
  if (pl->empty) return SEQK_K_FLASH_OK;

  const int64_t dmax = D > Dv ? D : Dv;
  if (dmax > 256) return SEQK_K_FLASH_HEAD_DIM;
  const int64_t group = H / Hk;
  /* Rows, keys and heads are ints in the kernels (and the split partials index [splits][B][H][Sq]
     with H as an int): a head count H = Hk * group past 2^31 would wrap. */
  if (Sk > INT32_MAX / 2 || Sq > INT32_MAX / 2 || group * Sq > INT32_MAX / 2 || H > INT32_MAX / 2)
    return SEQK_K_FLASH_ROWS;
  if (B > seqk_kernels::kMaxGridYZ || Hk > seqk_kernels::kMaxGridYZ) return SEQK_K_FLASH_GRID;
  if (cc_major < 8) return SEQK_K_FLASH_ARCH;

  /* Batch, head and row strides as the kernels take them (extent-1 dims: 0). Paged K/V: the
     page stride in the batch's place (pages are many even when B is 1), the row stride within a
     page (0 for one-row pages). */
  const bool paged = a->page_table != nullptr;
  if (paged && (a->page_size < 1 || a->page_size > INT32_MAX)) return SEQK_K_FLASH_ROWS;
  /* Packed: the row strides also step to each sequence's first row (kept for extents of 1). */
  const bool packed = a->q_start != nullptr;
  int64_t qs[3], ks[3], vs[3], os[3];
  const int64_t q_ext[3] = {B, H, packed ? 2 : Sq};
  const int64_t kv_ext[3] = {paged ? 2 : B, Hk, paged ? a->page_size : packed ? 2 : Sk};
  for (int d = 0; d < 3; ++d) {
    qs[d] = eff_stride(q_ext[d], a->q_stride[d]);
    ks[d] = eff_stride(kv_ext[d], a->k_stride[d]);
    vs[d] = eff_stride(kv_ext[d], a->v_stride[d]);
    os[d] = eff_stride(q_ext[d], a->o_stride[d]);
  }
  /* The tensor-core kernel steps between a thread's K/V rows by 32-bit byte offsets. */
  if (ks[2] >= ((int64_t)1 << 26) || vs[2] >= ((int64_t)1 << 26)) return SEQK_K_FLASH_STRIDE;

  const seqk_dtype dtype = a->dtype;
  bool tc = dtype != SEQK_DTYPE_F32 && D % 8 == 0 && Dv % 8 == 0 && rows_aligned(a->q, qs, 8) &&
            rows_aligned(a->k, ks, 8) && rows_aligned(a->v, vs, 8);
  /* Paged: the tensor-core kernel keeps row offsets in 16-byte units as 32 bits. */
  if (paged && tc) {
    const int64_t last_k =
        (a->num_pages - 1) * ks[0] + (a->page_size - 1) * ks[2] + (Hk - 1) * ks[1];
    const int64_t last_v =
        (a->num_pages - 1) * vs[0] + (a->page_size - 1) * vs[2] + (Hk - 1) * vs[1];
    const int64_t limit = ((int64_t)1 << 32) * 8 - 256; /* elements of 2 bytes, a row's room kept */
    if (last_k >= limit || last_v >= limit) tc = false;
  }
  if (force.kernel == 1) tc = false;
  int dpad = tc ? seqk_kernels::round_up_in(tc_head_dims{}, dmax)
                : seqk_kernels::round_up_in(simt_head_dims{}, dmax);
  /* an instantiation without the score modifiers hands such a call to the next larger one */
  if (tc && (a->softcap > 0.0f || a->alibi_slopes || (a->left >= 0 && a->left < Sq + Sk)) &&
      !tc_score_mods(dpad, paged))
    dpad = seqk_kernels::round_up_in(tc_head_dims{}, dpad + 1);
  if (tc && a->alibi_slopes && !tc_alibi(dpad, paged))
    dpad = seqk_kernels::round_up_in(tc_head_dims{}, dpad + 1);
  if (tc && packed && !tc_packed(dpad, paged))
    dpad = seqk_kernels::round_up_in(tc_head_dims{}, dpad + 1);
  /* Hopper: any tensor-core call but paged ones (its K/V maps span one contiguous tensor), on 9.0
     (the kernel is built for sm_90a only), unless a test forces another. */
  const bool hopper = tc && cc_major == 9 && !paged && force.kernel != 2;
  if (hopper) dpad = seqk_kernels::round_up_in(hp_head_dims{}, dmax);
  const tile_shape shape = hopper ? hopper_shape(dpad)
                           : tc   ? tc_shape(dpad, paged)
                                  : simt_shape(dpad);
  pl->tc = tc;
  pl->hopper = hopper;
  pl->dpad = dpad;
  pl->dtype = dtype;

  seqk_k_flash_params &p = pl->p;
  p.q = a->q;
  p.k = a->k;
  p.v = a->v;
  p.o = a->o;
  p.lse = a->lse;
  p.part_o = p.part_lse = nullptr;
  p.q_sb = qs[0];
  p.q_sh = qs[1];
  p.q_ss = qs[2];
  p.k_sb = paged ? 0 : ks[0];
  p.k_sh = ks[1];
  p.k_ss = ks[2];
  p.v_sb = paged ? 0 : vs[0];
  p.v_sh = vs[1];
  p.v_ss = vs[2];
  p.page_table = a->page_table;
  if (paged) {
    p.k_sp = ks[0];
    p.v_sp = vs[0];
    p.pt_sb = a->pt_stride[0];
    p.pt_ss = a->pt_stride[1];
    p.page_size = (int)a->page_size;
  }
  p.o_sb = os[0];
  p.o_sh = os[1];
  p.o_ss = os[2];
  p.l_sb = p.l_sh = p.l_ss = 0;
  if (p.lse) {
    p.l_sb = eff_stride(B, a->lse_stride[0]);
    p.l_sh = eff_stride(H, a->lse_stride[1]);
    p.l_ss = eff_stride(q_ext[2], a->lse_stride[2]);
  }
  p.B = (int)B;
  p.H = (int)H;
  p.Hk = (int)Hk;
  p.group = (int)group;
  p.Sq = (int)Sq;
  p.Sk = (int)Sk;
  p.D = (int)D;
  p.Dv = (int)Dv;
  p.rows = (int)(group * Sq);
  /* an extent reaching past every key is no bound (Sq + Sk < 2^31 here) */
  p.left = a->left < 0 || a->left >= Sq + Sk ? -1 : (int)a->left;
  p.right = a->right < 0 || a->right >= Sq + Sk ? -1 : (int)a->right;
  p.softcap_log2 = a->softcap > 0.0f ? (float)(a->softcap * 1.4426950408889634) : 0.0f;
  p.scale_log2 = (float)(a->scale * 1.4426950408889634); /* log2(e) */
  p.scale_abs_log2 = fabsf(p.scale_log2);
  p.softcap_k = p.softcap_hi = p.softcap_m2 = 0.0f;
  if (p.softcap_log2 > 0.0f) { /* flash_attention.cuh, softcap_raw */
    const double S = (double)p.softcap_log2, c = (double)p.scale_abs_log2;
    p.softcap_k = (float)(2.0 * c * 1.4426950408889634 / S);
    p.softcap_hi = (float)fmin(S / c, 3.0e38);
    p.softcap_m2 = (float)fmax(-2.0 * S / c, -3.0e38);
  }
  p.alibi = a->alibi_slopes;
  p.alibi_raw = (float)(1.0 / fabs(a->scale));
  p.seqlens_q = a->seqlens_q;
  p.seqlens_k = a->seqlens_k;
  p.q_start = a->q_start;
  p.k_start = a->k_start;
  p.k_rows = a->k_rows;
  p.in_vec = dtype == SEQK_DTYPE_F32 && D % 4 == 0 && Dv % 4 == 0 && rows_aligned(a->q, qs, 4) &&
             rows_aligned(a->k, ks, 4) && rows_aligned(a->v, vs, 4);
  p.o_vec = rows_aligned(a->o, os, 8);

  /* Split-KV when the grid would leave SMs idle. Batch-invariant: as if the batch were one
     sequence, so that a sequence's splits (and the merge's association of its partials) do not
     depend on what else is in the batch. */
  const int64_t row_tiles = (p.rows + shape.bm - 1) / shape.bm;
  const int64_t blocks = row_tiles * Hk * (a->batch_invariant ? 1 : B);
  /* the keys one row tile sees: a left window bounds them */
  int64_t keys = Sk;
  if (p.left >= 0) {
    const int64_t span = (int64_t)p.left + (p.right >= 0 ? p.right : Sk) +
                         (Sq < shape.bm ? Sq : shape.bm) +
                         shape.bn; /* plan_block starts the keys at a tile boundary */
    if (span < keys) keys = span;
  }
  const int64_t key_tiles = (keys + shape.bn - 1) / shape.bn;
  int64_t splits = 1;
  if (force.splits > 0) {
    splits = force.splits;
  } else if (blocks * 5 < (int64_t)sms * 4 && key_tiles >= 4) {
    splits = ((int64_t)2 * sms + blocks - 1) / blocks;
    if (splits > key_tiles / 2) splits = key_tiles / 2;
    if (splits > kMaxSplits) splits = kMaxSplits;
  }
  if (splits > key_tiles) splits = key_tiles;
  if ((B * H * Sq + 3) / 4 > INT32_MAX) splits = 1; /* the combine grid has one warp per row */
  if (packed) splits = 1; /* packed: the combine kernel writes every row below Sq */
  if (splits < 1) splits = 1;
  /* none empty at Sk keys (each block splits its batch's own keys: kernels' plan_block) */
  const int64_t tiles_per_split = (key_tiles + splits - 1) / splits;
  if (splits > 1) splits = (key_tiles + tiles_per_split - 1) / tiles_per_split;
  p.splits = (int)splits;
  if (row_tiles * splits > INT32_MAX) return SEQK_K_FLASH_GRID;
  pl->part_rows = splits > 1 ? splits * B * H * Sq : 0;
  return SEQK_K_FLASH_OK;
}

extern "C" cudaError_t seqk_k_flash_launch(const seqk_k_flash_plan *pl, cudaStream_t stream) {
  seqk_kernels::begin_launch();
  if (pl->empty) return cudaSuccess;
  const seqk_k_flash_params &p = pl->p;
  if (p.splits > 1 && (!p.part_o || !p.part_lse)) return cudaErrorInvalidValue;
  cudaError_t err;
  if (pl->hopper)
    err = launch_hopper(p, pl->dtype, pl->dpad, stream);
  else if (pl->tc && p.page_table)
    err = pl->dtype == SEQK_DTYPE_F16 ? launch_tc_f16_paged(p, pl->dpad, stream)
                                      : launch_tc_bf16_paged(p, pl->dpad, stream);
  else if (pl->tc)
    err = pl->dtype == SEQK_DTYPE_F16 ? launch_tc_f16(p, pl->dpad, stream)
                                      : launch_tc_bf16(p, pl->dpad, stream);
  else
    err = launch_simt(p, pl->dtype, pl->dpad, stream);
  if (err == cudaSuccess && p.splits > 1) err = launch_combine(p, pl->dtype, stream);
  return err;
}
