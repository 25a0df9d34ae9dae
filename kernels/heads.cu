/*
 * heads.cu - seqk_split_heads / seqk_merge_heads on CUDA tensors: one 4-d permuting copy
 * (host/cuda_heads.c describes each op's x and y in the dims (b, h, s, d)).
 *
 * Both ops are the same permutation seen from either side: y[b,h,s,:] = x[b,s,h*D:(h+1)*D] for
 * split, the reverse for merge. Neither does arithmetic, so the kernel moves raw bits and is
 * written once for "units" of 2, 4, 8 or 16 bytes instead of once per dtype: four
 * instantiations serve f32/f16/bf16 for both ops, and every value (NaN payloads included) is
 * copied exactly, as the CPU reference does.
 *
 * Layout of the work. Each (b, h, s) names one run of D contiguous-in-the-best-case elements
 * on both sides (the head vector): the source run and the destination run. A block takes a
 * chunk of consecutive runs along the destination's fastest outer dim and its threads walk the
 * chunk's units in destination order, so
 *   - writes are fully coalesced (consecutive threads write consecutive units of y);
 *   - reads are contiguous within each run: for the usual head sizes (D*elem >= 32 bytes, one
 *     sector) every sector fetched from x is used completely. For tiny heads (D*elem < 32 B) a
 *     warp's reads touch a few partly used sectors; the rest of those sectors is read by the
 *     neighbouring heads' blocks moments later and comes from L2, so DRAM traffic stays one
 *     read + one write per byte. A shared-memory transpose would only save L2->SM transactions
 *     for shapes nobody runs at bandwidth-bound sizes, so there is none.
 * Vector width: the dispatcher picks the widest unit (16, 8, 4 bytes, else the element) that
 * the layout allows on BOTH sides: the head dim contiguous (stride 1) in x and y, D*elem a
 * multiple of the unit, every other stride in bytes a multiple of it, and both base pointers
 * aligned to it. 16-byte units give LDG.128/STG.128, the fewest memory instructions per byte.
 * Any other layout (strided head dim, broadcast inputs, odd offsets) uses the element itself as
 * the unit with its strides: slower, always correct.
 */
#include "cuda_compat.cuh"
#include "common.cuh"

namespace {

/* The permutation in units: dims 0, 1, 2 are the outer (b, h, s) dims ordered so that dim 2 has
   the destination's smallest outer stride (consecutive runs of a block sit next to each other
   in y), dim 3 is the head dim. */
struct run_copy {
  int64_t n[4];
  int64_t src[4];
  int64_t dst[4];
};

constexpr int kThreads = 256;
/* Units each thread keeps in flight: four independent loads before the stores, so a thread
   hides more latency than one load at a time would. */
constexpr int kUnroll = 4;

/* U: a fixed-size bit container for the copy (uint16_t / uint32_t / uint2 / uint4).
   Grid: z and y walk dims 0 and 1; x walks "pieces": a chunk of runs_per_block consecutive runs
   along dim 2, or, for runs longer than a chunk, a chunk-sized stretch of one run. A piece holds
   at most kThreads * kUnroll units, so everything inside it is 32-bit arithmetic (64-bit
   division and multiplication cost several instructions each) and only the piece's base
   offsets are 64-bit. */
template <typename U>
__global__ void heads_permute_kernel(U *__restrict__ dst, const U *__restrict__ src, run_copy p,
                                     int32_t runs_per_block, int64_t pieces_per_run,
                                     int64_t n_pieces) {
  constexpr int32_t kChunk = kThreads * kUnroll;
  for (int64_t i0 = blockIdx.z; i0 < p.n[0]; i0 += gridDim.z)
    for (int64_t i1 = blockIdx.y; i1 < p.n[1]; i1 += gridDim.y)
      for (int64_t x = blockIdx.x; x < n_pieces; x += gridDim.x) {
        const int64_t chunk = x / pieces_per_run, part = x - chunk * pieces_per_run;
        const int64_t r0 = chunk * runs_per_block, u0 = part * kChunk;
        const int32_t runs = (int32_t)(p.n[2] - r0 < runs_per_block ? p.n[2] - r0 : runs_per_block);
        const int32_t len = (int32_t)(p.n[3] - u0 < kChunk ? p.n[3] - u0 : kChunk);
        const int32_t total = runs * len;
        const U *s = src + i0 * p.src[0] + i1 * p.src[1] + r0 * p.src[2] + u0 * p.src[3];
        U *d = dst + i0 * p.dst[0] + i1 * p.dst[1] + r0 * p.dst[2] + u0 * p.dst[3];
        for (int32_t t0 = threadIdx.x; t0 < total; t0 += kChunk) {
          U v[kUnroll];
          int64_t doff[kUnroll];
          SEQK_UNROLL
          for (int k = 0; k < kUnroll; ++k) {
            const int32_t t = t0 + k * kThreads;
            if (t < total) {
              int32_t r = 0, u = t;
              if (runs > 1) {
                r = (int32_t)((uint32_t)t / (uint32_t)len);
                u = t - r * len;
              }
              v[k] = s[r * p.src[2] + u * p.src[3]];
              doff[k] = r * p.dst[2] + u * p.dst[3];
            }
          }
          SEQK_UNROLL
          for (int k = 0; k < kUnroll; ++k)
            if (t0 + k * kThreads < total) d[doff[k]] = v[k];
        }
      }
}

template <typename U>
void launch_permute(cudaStream_t stream, void *dst, const void *src, const run_copy &p) {
  const int64_t chunk = (int64_t)kThreads * kUnroll;
  const int64_t runs_per_block = p.n[3] >= chunk ? 1 : chunk / p.n[3];
  const int64_t pieces_per_run = (p.n[3] + chunk - 1) / chunk;
  const int64_t n_pieces = (p.n[2] + runs_per_block - 1) / runs_per_block * pieces_per_run;
  /* The loops in the kernel cover whatever the grid limits leave over. */
  using seqk_kernels::kMaxGridX;
  using seqk_kernels::kMaxGridYZ;
  const int64_t gx = n_pieces < kMaxGridX ? n_pieces : kMaxGridX;
  const int64_t gy = p.n[1] < kMaxGridYZ ? p.n[1] : kMaxGridYZ;
  const int64_t gz = p.n[0] < kMaxGridYZ ? p.n[0] : kMaxGridYZ;
  launch(dim3((unsigned)gx, (unsigned)gy, (unsigned)gz), dim3(kThreads), 0, stream,
         heads_permute_kernel<U>, static_cast<U *>(dst), static_cast<const U *>(src), p,
         (int32_t)runs_per_block, pieces_per_run, n_pieces);
}

/* Can `unit` bytes move as one piece on this side? (Strides in elements, dims b,h,s,d.) */
bool unit_fits(size_t unit, size_t es, const void *ptr, const int64_t n[4], const int64_t st[4]) {
  if ((uintptr_t)ptr % unit != 0) return false;
  if (n[3] > 1 && st[3] != 1) return false;
  if (((uint64_t)n[3] * es) % unit != 0) return false;
  for (int i = 0; i < 3; ++i)
    if (n[i] > 1 && ((uint64_t)st[i] * es) % unit != 0) return false;
  return true;
}

}   // namespace

/* The outer dims go by decreasing destination stride (stable): the block's runs then follow y's
   memory even when y is a transposed view such as a [B,S,H,D] buffer seen as [B,H,S,D]. Size-1
   dims go outermost whatever their stride, so that decoding shapes (S = 1) still give each block
   a chunk of many runs along a real dim. */
extern "C" cudaError_t seqk_k_permute4(const seqk_k_permute4_params *in, cudaStream_t stream) {
  seqk_kernels::begin_launch();
  const int64_t *n_in = in->n;
  if (n_in[0] == 0 || n_in[1] == 0 || n_in[2] == 0 || n_in[3] == 0) return cudaSuccess;
  const size_t es = in->elem_size;
  int64_t key[3];
  for (int i = 0; i < 3; ++i) key[i] = n_in[i] > 1 ? in->dst_stride[i] : INT64_MAX;
  int order[3] = {0, 1, 2};
  for (int i = 1; i < 3; ++i)
    for (int j = i; j > 0 && key[order[j]] > key[order[j - 1]]; --j) {
      const int tmp = order[j];
      order[j] = order[j - 1];
      order[j - 1] = tmp;
    }
  int64_t n[4], sst[4], dstr[4];
  for (int i = 0; i < 3; ++i) {
    n[i] = n_in[order[i]];
    sst[i] = in->src_stride[order[i]];
    dstr[i] = in->dst_stride[order[i]];
  }
  n[3] = n_in[3];
  sst[3] = in->src_stride[3];
  dstr[3] = in->dst_stride[3];

  size_t unit = es;
  for (size_t u = 16; u > es; u /= 2)
    if (unit_fits(u, es, in->src, n, sst) && unit_fits(u, es, in->dst, n, dstr)) {
      unit = u;
      break;
    }
  run_copy p;
  const int64_t per = (int64_t)(unit / es); /* elements per unit */
  for (int i = 0; i < 3; ++i) {
    p.n[i] = n[i];
    p.src[i] = n[i] > 1 ? sst[i] / per : 0;
    p.dst[i] = n[i] > 1 ? dstr[i] / per : 0;
  }
  p.n[3] = n[3] / per;
  p.src[3] = per > 1 ? 1 : sst[3];
  p.dst[3] = per > 1 ? 1 : dstr[3];

  switch (unit) {
    case 16: launch_permute<uint4>(stream, in->dst, in->src, p); break;
    case 8: launch_permute<uint2>(stream, in->dst, in->src, p); break;
    case 4: launch_permute<uint32_t>(stream, in->dst, in->src, p); break;
    default: launch_permute<uint16_t>(stream, in->dst, in->src, p); break;
  }
  return cudaGetLastError();
}
