/*
 * flash_attention_simt.cu - the fp32 fused attention kernel (CUDA cores, fp32 math end to end) and
 * the split-KV combine kernel.
 *
 * The SIMT kernel serves F32 tensors, and F16/BF16 tensors the tensor-core kernel cannot take
 * (head dims that are not multiples of 8, rows not 16-byte aligned): inputs are converted to fp32
 * as they are loaded, the output is rounded once when stored. Row bookkeeping, masking and the
 * online softmax are those of flash_attention.cuh.
 *
 * Block: 128 threads (4 warps), BM query rows x BN keys per tile, head dims up to DM. Warp w owns
 * rows w*BM/4 + lr + 4*i (lr = lane / 8, i < BM/16) and, for S, key columns lc + 8*j (lc = lane % 8,
 * j < BN/8); so a row's statistics live in 8 lanes of one warp (three xor shuffles), and P goes
 * through the warp's own rows of shared memory (a __syncwarp, no block barrier). For O the same
 * rows take value columns 32*c + 4*lc .. +3, read from V as float4.
 * Shared memory (fp32): Q [BM][DM+4], K [BN][DM+4], V [BN][DM+4], P [BM][BN+8], then the rows'
 * first keys (int [BM]) and ALiBi terms (float2 [BM]). The +4 pad puts
 * the 8 K rows one S step reads (float4 at the same d) in 8 different bank quads; the +8 pad does
 * the same for the 4 rows x 8 columns of one P store.
 * Tile shapes: DM 32 and 64: 64 x 64 (S 32 + O 16/32 registers per thread, 46 / 71 KB);
 * DM 128: 32 x 64 (O 32 registers, 94 KB); DM 256: 32 x 32 (O 64 registers, 105 KB). Fewer rows
 * for large DM keep O in registers and the block within the shared memory two blocks per SM
 * need on H100.
 * Loads are synchronous (global -> registers -> shared): this path does D FMAs per score on CUDA
 * cores, so it is compute-bound and two resident blocks cover the load latency.
 */
#include "flash_attention.cuh"
#include "merge.cuh"

namespace seqk_flash {
namespace {

/* One entry per simt_head_dims value. */
// clang-format off
template <int DM> struct simt_traits;
template <> struct simt_traits<32> { static constexpr int BM = 64, BN = 64; };
template <> struct simt_traits<64> { static constexpr int BM = 64, BN = 64; };
template <> struct simt_traits<128> { static constexpr int BM = 32, BN = 64; };
template <> struct simt_traits<256> { static constexpr int BM = 32, BN = 32; };
// clang-format on

template <int DM>
constexpr size_t simt_smem_bytes() {
  return sizeof(float) * ((size_t)(simt_traits<DM>::BM + 2 * simt_traits<DM>::BN) * (DM + 4) +
                          (size_t)simt_traits<DM>::BM * (simt_traits<DM>::BN + 8)) +
         (sizeof(int) + sizeof(float2)) * simt_traits<DM>::BM;
}

/* Four consecutive elements src[d..d+3] as floats, zero at and past dim. */
template <typename T>
__device__ __forceinline__ float4 load4(const T *src, int d, int dim, bool vec) {
  (void)vec;
  float v[4];
  SEQK_UNROLL
  for (int u = 0; u < 4; ++u) v[u] = d + u < dim ? to_float(src[d + u]) : 0.0f;
  return make_float4(v[0], v[1], v[2], v[3]);
}
template <>
__device__ __forceinline__ float4 load4<float>(const float *src, int d, int dim, bool vec) {
  if (vec && d + 4 <= dim) return *reinterpret_cast<const float4 *>(src + d);
  float v[4];
  SEQK_UNROLL
  for (int u = 0; u < 4; ++u) v[u] = d + u < dim ? src[d + u] : 0.0f;
  return make_float4(v[0], v[1], v[2], v[3]);
}

/* PAGED: K and V rows through the page table (key_row); its own instantiation: a runtime choice in
   the load loop took 30-40 more registers in every contiguous variant (sm_80: 128 -> 159-168 at
   DM 64 and 256, 4 -> 3 blocks per SM). The paged one asks for one block per SM in its launch
   bounds: ptxas otherwise aimed at 3 and spilled 44 bytes (f16/bf16, DM 64 and 256, sm_80). */
template <typename T, int DM, bool PAGED>
__global__ void __launch_bounds__(128, PAGED ? 1 : 0) flash_simt_kernel(params p) {
  constexpr int BM = simt_traits<DM>::BM, BN = simt_traits<DM>::BN, NT = 128;
  constexpr int RM = BM / 16, CN = BN / 8, VC = DM / 32;
  constexpr int LDQ = DM + 4, LDP = BN + 8;
  static_assert(DM <= 32 * kRepairCols, "repair_row covers Dv <= 32 * kRepairCols");
  DYN_SMEM(float, smem);
  float *const sQ = smem;          /* [BM][LDQ] */
  float *const sK = sQ + BM * LDQ; /* [BN][LDQ] */
  float *const sV = sK + BN * LDQ; /* [BN][LDQ] */
  float *const sP = sV + BN * LDQ; /* [BM][LDP] */
  /* Each row's first visible key (key_first), read by the masked tiles and at the end; the repair
     reads a row's from here, not by a shuffle from the row's lane: the shuffle cost 33-40
     registers in the contiguous f32 DM 64 and every DM 256 variant (ptxas -v, sm_80: 161-168 ->
     128). */
  int *const sFirst = reinterpret_cast<int *>(sP + BM * LDP); /* [BM] */
  /* ALiBi per row (when the call has slopes): -slope log2(e) and the aligned position. */
  float2 *const sAlibi = reinterpret_cast<float2 *>(sFirst + BM); /* [BM] */

  const int tid = (int)threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int lr = lane >> 3, lc = lane & 7;
  const int b = (int)blockIdx.z, kh = (int)blockIdx.y;
  const block_plan w = plan_block<BM, BN>(p);
  const bool vec = p.in_vec != 0;

  const T *const qb = static_cast<const T *>(p.q) + q_rows_off(w, b, p.q_sb, p.q_ss);
  /* The batch's and head's K and V; rows by key_row (contiguous, or through the page table). */
  const T *const kb =
      static_cast<const T *>(p.k) + k_rows_off(w, b, p.k_sb, p.k_ss) + (int64_t)kh * p.k_sh;
  const T *const vb =
      static_cast<const T *>(p.v) + k_rows_off(w, b, p.v_sb, p.v_ss) + (int64_t)kh * p.v_sh;

  int lrow[RM], lim[RM];
  SEQK_UNROLL
  for (int i = 0; i < RM; ++i) {
    lrow[i] = warp * (BM / 4) + lr + 4 * i;
    const int r = w.r0 + lrow[i];
    lim[i] = r < w.r1 ? key_limit(p, w.L, r % p.Sq) : 0;
  }
  if (tid < BM) sFirst[tid] = w.r0 + tid < w.r1 ? key_first(p, w.L, (w.r0 + tid) % p.Sq) : 0;
  if (p.alibi && tid < BM) {
    float2 a = make_float2(0.0f, 0.0f);
    if (w.r0 + tid < w.r1) {
      int h, i;
      row_coords(p, kh, w.r0 + tid, &h, &i);
      a = make_float2(-p.alibi[h] * kLog2e, (float)(i + (w.L.k - w.L.q)));
    }
    sAlibi[tid] = a;
  }
  __syncthreads(); /* rows' first keys are written by other warps than read them */

  float acc[RM][VC][4];
  float m[RM], l[RM];
  SEQK_UNROLL
  for (int i = 0; i < RM; ++i) {
    SEQK_UNROLL
    for (int c = 0; c < VC; ++c) {
      SEQK_UNROLL
      for (int u = 0; u < 4; ++u) acc[i][c][u] = 0.0f;
    }
    m[i] = -INFINITY;
    l[i] = 0.0f;
  }

  const int ntile = w.kbeg < w.kend ? (w.kend - w.kbeg + BN - 1) / BN : 0;
  if (ntile > 0) {
    /* Q rows past the batch's queries and columns past D are zero. */
    for (int c = tid; c < BM * (DM / 4); c += NT) {
      const int row = c / (DM / 4), d = (c % (DM / 4)) * 4, r = w.r0 + row;
      float4 val = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      if (r < w.r1 && d < p.D) {
        int h, i;
        row_coords(p, kh, r, &h, &i);
        if (i < w.L.q) val = load4(qb + (int64_t)h * p.q_sh + (int64_t)i * p.q_ss, d, p.D, vec);
      }
      *reinterpret_cast<float4 *>(sQ + row * LDQ + d) = val;
    }
  }

  for (int it = 0; it < ntile; ++it) {
    const int n0 = w.kbeg + it * BN;
    __syncthreads(); /* the previous tile's K, V (and P) are no longer read */
    for (int c = tid; c < BN * (DM / 4); c += NT) {
      const int row = c / (DM / 4), d = (c % (DM / 4)) * 4, j = n0 + row;
      float4 kv = make_float4(0.0f, 0.0f, 0.0f, 0.0f), vv = kv;
      if (j < w.L.k) { /* padding keys stay zero: 0 * NaN would leak into PV */
        if (d < p.D) kv = load4(kb + key_row<PAGED>(p, b, j, p.k_sp, p.k_ss), d, p.D, vec);
        if (d < p.Dv) vv = load4(vb + key_row<PAGED>(p, b, j, p.v_sp, p.v_ss), d, p.Dv, vec);
      }
      *reinterpret_cast<float4 *>(sK + row * LDQ + d) = kv;
      *reinterpret_cast<float4 *>(sV + row * LDQ + d) = vv;
    }
    __syncthreads();
    /* A warp whose rows all lie past the tile's last row (short tiles, decode) only helps load. */
    if (warp * (BM / 4) >= w.r1 - w.r0) continue;

    float s[RM][CN];
    SEQK_UNROLL
    for (int i = 0; i < RM; ++i) {
      SEQK_UNROLL
      for (int j = 0; j < CN; ++j) s[i][j] = 0.0f;
    }
    for (int d = 0; d < p.D; d += 4) {
      float4 qv[RM], kv[CN];
      SEQK_UNROLL
      for (int i = 0; i < RM; ++i)
        qv[i] = *reinterpret_cast<const float4 *>(sQ + lrow[i] * LDQ + d);
      SEQK_UNROLL
      for (int j = 0; j < CN; ++j)
        kv[j] = *reinterpret_cast<const float4 *>(sK + (lc + 8 * j) * LDQ + d);
      SEQK_UNROLL
      for (int i = 0; i < RM; ++i) {
        SEQK_UNROLL
        for (int j = 0; j < CN; ++j)
          s[i][j] += qv[i].x * kv[j].x + qv[i].y * kv[j].y + qv[i].z * kv[j].z + qv[i].w * kv[j].w;
      }
    }

    const bool masked = n0 + BN > w.kmin || n0 < w.kfirst;
    SEQK_UNROLL
    for (int i = 0; i < RM; ++i) {
      float mx = -INFINITY;
      SEQK_UNROLL
      for (int j = 0; j < CN; ++j) {
        const int key = n0 + lc + 8 * j;
        float t = cap_log2(p, s[i][j] * p.scale_log2);
        if (p.alibi) t = fmaf(sAlibi[lrow[i]].x, fabsf(sAlibi[lrow[i]].y - (float)key), t);
        if (masked && (key >= lim[i] || key < sFirst[lrow[i]])) t = -INFINITY;
        s[i][j] = t;
        mx = fmaxf(mx, t);
      }
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 4));
      const float m_new = fmaxf(m[i], mx);
      const float m_use = m_new == -INFINITY ? 0.0f : m_new;
      const float alpha = exp2f(m[i] - m_use);
      m[i] = m_new;
      float sum = 0.0f;
      SEQK_UNROLL
      for (int j = 0; j < CN; ++j) {
        const float pv = exp2f(s[i][j] - m_use);
        sP[lrow[i] * LDP + lc + 8 * j] = pv;
        sum += pv;
      }
      l[i] = l[i] * alpha + sum; /* this lane's part; the 8 lanes are summed at the end */
      SEQK_UNROLL
      for (int c = 0; c < VC; ++c) {
        SEQK_UNROLL
        for (int u = 0; u < 4; ++u) acc[i][c][u] *= alpha;
      }
    }
    __syncwarp(); /* P rows are this warp's own */

    /* O += P V over the keys this tile can hold (later ones have p = 0). */
    const int jn = min(BN, w.kend - n0);
    for (int j = 0; j < jn; j += 4) {
      float4 pv[RM];
      SEQK_UNROLL
      for (int i = 0; i < RM; ++i)
        pv[i] = *reinterpret_cast<const float4 *>(sP + lrow[i] * LDP + j);
      SEQK_UNROLL
      for (int c = 0; c < VC; ++c) {
        if (c * 32 < p.Dv) {
          const float *vr = sV + j * LDQ + c * 32 + lc * 4;
          const float4 v0 = *reinterpret_cast<const float4 *>(vr);
          const float4 v1 = *reinterpret_cast<const float4 *>(vr + LDQ);
          const float4 v2 = *reinterpret_cast<const float4 *>(vr + 2 * LDQ);
          const float4 v3 = *reinterpret_cast<const float4 *>(vr + 3 * LDQ);
          SEQK_UNROLL
          for (int i = 0; i < RM; ++i) {
            acc[i][c][0] += pv[i].x * v0.x + pv[i].y * v1.x + pv[i].z * v2.x + pv[i].w * v3.x;
            acc[i][c][1] += pv[i].x * v0.y + pv[i].y * v1.y + pv[i].z * v2.y + pv[i].w * v3.y;
            acc[i][c][2] += pv[i].x * v0.z + pv[i].y * v1.z + pv[i].z * v2.z + pv[i].w * v3.z;
            acc[i][c][3] += pv[i].x * v0.w + pv[i].y * v1.w + pv[i].z * v2.w + pv[i].w * v3.w;
          }
        }
      }
    }
  }

  T *const ob = static_cast<T *>(p.o) + q_rows_off(w, b, p.o_sb, p.o_ss);
  float inv_row[RM];
  SEQK_UNROLL
  for (int i = 0; i < RM; ++i) {
    float sum = l[i];
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    sum += __shfl_xor_sync(0xffffffffu, sum, 4);
    const bool visible = sees_key(w, sFirst[lrow[i]], lim[i]);
    const float inv = row_inv(sum, visible);
    inv_row[i] = inv;
    const int r = w.r0 + lrow[i];
    if (r >= w.r1) continue;
    int h, qi;
    row_coords(p, kh, r, &h, &qi);
    if (!row_written(p, w, qi)) continue;
    if (p.splits > 1) { /* fp32 partials; an empty part has lse -inf and o = 0, a NaN part NaN */
      const int64_t pr = part_row(p, w.split, b, h, qi);
      float *dst = p.part_o + pr * p.Dv;
      SEQK_UNROLL
      for (int c = 0; c < VC; ++c) {
        SEQK_UNROLL
        for (int u = 0; u < 4; ++u) {
          const int e = c * 32 + lc * 4 + u;
          if (e < p.Dv) dst[e] = acc[i][c][u] * inv;
        }
      }
      if (lc == 0) p.part_lse[pr] = row_lse(m[i], sum, visible, -INFINITY);
    } else {
      T *dst = ob + (int64_t)h * p.o_sh + (int64_t)qi * p.o_ss;
      SEQK_UNROLL
      for (int c = 0; c < VC; ++c) {
        SEQK_UNROLL
        for (int u = 0; u < 4; ++u) {
          const int e = c * 32 + lc * 4 + u;
          if (e < p.Dv) dst[e] = from_float<T>(acc[i][c][u] * inv);
        }
      }
      if (p.lse && lc == 0)
        p.lse[q_rows_off(w, b, p.l_sb, p.l_ss) + (int64_t)h * p.l_sh + (int64_t)qi * p.l_ss] =
            row_lse(m[i], sum, visible, INFINITY);
    }
  }

  /* Rows whose o is non-finite while keys they do not see were in the product are recomputed
     (flash_attention.cuh, repair_row). The 8 lanes of a row vote; lane lc = 0 stands for it. */
  __syncwarp();
  SEQK_UNROLL
  for (int i = 0; i < RM; ++i) {
    int bad = 0;
    SEQK_UNROLL
    for (int c = 0; c < VC; ++c) {
      SEQK_UNROLL
      for (int u = 0; u < 4; ++u) bad |= !isfinite(acc[i][c][u]);
    }
    bad |= __shfl_xor_sync(0xffffffffu, bad, 1);
    bad |= __shfl_xor_sync(0xffffffffu, bad, 2);
    bad |= __shfl_xor_sync(0xffffffffu, bad, 4);
    const unsigned todo = __ballot_sync(0xffffffffu, bad && lc == 0 && w.r0 + lrow[i] < w.r1 &&
                                                         misses_key(w, sFirst[lrow[i]], lim[i]));
    if (!todo) continue; /* warp-uniform */
    const int k1_own = min(lim[i], w.kend);
    auto get = [&](int src, int *h, int *qi, int *k0, int *k1, float *mm, float *iv) {
      *k0 = max(sFirst[warp * (BM / 4) + (src >> 3) + 4 * i], w.kbeg);
      *k1 = __shfl_sync(0xffffffffu, k1_own, src);
      *mm = __shfl_sync(0xffffffffu, m[i], src);
      *iv = __shfl_sync(0xffffffffu, inv_row[i], src);
      row_coords(p, kh, w.r0 + warp * (BM / 4) + (src >> 3) + 4 * i, h, qi);
    };
    repair_rows<T, PAGED, true, true>(p, w, b, kh, todo, lane, get);
  }
}

template <typename T, int DM>
cudaError_t launch_simt_dm(const params &p, cudaStream_t stream) {
  constexpr int BM = simt_traits<DM>::BM;
  const unsigned tiles = (unsigned)((p.rows + BM - 1) / BM);
  return seqk_kernels::launch_checked(
      dim3(tiles * (unsigned)p.splits, (unsigned)p.Hk, (unsigned)p.B), dim3(128),
      simt_smem_bytes<DM>(), stream,
      p.page_table ? flash_simt_kernel<T, DM, true> : flash_simt_kernel<T, DM, false>, p);
}

/* Split-KV combine: one warp per output row (b, h, i), merge.cuh's rule over all splits (the
   math of seqk_attention_merge): empty parts (lse -inf: no visible key in that split) weigh 0,
   the others exp(lse_s - max) normalised to sum 1; no part with keys -> o = 0, lse = +inf. */
template <typename T>
__global__ void __launch_bounds__(128) flash_combine_kernel(params p) {
  using namespace seqk_merge;
  const int lane = (int)threadIdx.x & 31;
  const int64_t row = (int64_t)blockIdx.x * 4 + (threadIdx.x >> 5);
  const int64_t n_rows = (int64_t)p.B * p.H * p.Sq;
  if (row >= n_rows) return; /* whole warps leave; no barrier follows */
  const int i = (int)(row % p.Sq), h = (int)((row / p.Sq) % p.H),
            b = (int)(row / ((int64_t)p.Sq * p.H));
  float m = -INFINITY;
  for (int s = lane; s < p.splits; s += 32) m = merge_max(m, p.part_lse[part_row(p, s, b, h, i)]);
  SEQK_UNROLL
  for (int off = 16; off > 0; off >>= 1) m = merge_max(m, __shfl_xor_sync(0xffffffffu, m, off));
  T *dst = static_cast<T *>(p.o) + (int64_t)b * p.o_sb + (int64_t)h * p.o_sh + (int64_t)i * p.o_ss;
  float *lse_dst =
      p.lse ? p.lse + (int64_t)b * p.l_sb + (int64_t)h * p.l_sh + (int64_t)i * p.l_ss : nullptr;
  if (!any_part(m)) {
    for (int e = lane; e < p.Dv; e += 32) dst[e] = from_float<T>(0.0f);
    if (lse_dst && lane == 0) *lse_dst = INFINITY;
    return;
  }
  float sum = 0.0f;
  for (int s = lane; s < p.splits; s += 32)
    sum += part_weight(p.part_lse[part_row(p, s, b, h, i)], m);
  SEQK_UNROLL
  for (int off = 16; off > 0; off >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
  for (int e = lane; e < p.Dv; e += 32) {
    float acc = 0.0f;
    for (int s = 0; s < p.splits; ++s) {
      const int64_t pr = part_row(p, s, b, h, i);
      const float l = p.part_lse[pr];
      if (!empty_part(l)) acc += part_weight(l, m) / sum * p.part_o[pr * p.Dv + e];
    }
    dst[e] = from_float<T>(acc);
  }
  if (lse_dst && lane == 0) *lse_dst = merged_lse(m, sum);
}

}   // namespace

tile_shape simt_shape(int dm) {
  return seqk_kernels::value_switch(simt_head_dims{}, dm, tile_shape{0, 0}, [](auto D) {
    using traits = simt_traits<decltype(D)::value>;
    return tile_shape{traits::BM, traits::BN};
  });
}

cudaError_t launch_simt(const params &p, seqk_dtype dtype, int dm, cudaStream_t stream) {
  cudaError_t err = cudaErrorInvalidValue;
  seqk_kernels::by_dtype(dtype, [&](auto tag) {
    err = seqk_kernels::value_switch(simt_head_dims{}, dm, cudaErrorInvalidValue, [&](auto D) {
      return launch_simt_dm<decltype(tag), decltype(D)::value>(p, stream);
    });
  });
  return err;
}

cudaError_t launch_combine(const params &p, seqk_dtype dtype, cudaStream_t stream) {
  const int64_t n_rows = (int64_t)p.B * p.H * p.Sq;
  const dim3 grid((unsigned)((n_rows + 3) / 4));
  seqk_kernels::by_dtype(dtype, [&](auto tag) {
    launch(grid, dim3(128), 0, stream, flash_combine_kernel<decltype(tag)>, p);
  });
  return cudaGetLastError();
}

}   // namespace seqk_flash
