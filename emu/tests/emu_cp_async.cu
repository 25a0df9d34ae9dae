/*
 * emu_cp_async.cu - cp.async of 4, 8 and 16 bytes with every src-size (zero fill), and the group
 * semantics of commit_group / wait_group N / wait_all. On the emulator a copy whose group has not
 * been waited for leaves 0xFF bytes in shared memory; that part is checked only there.
 */
#include "primitives.cuh"
#include "emu_check.h"

#include <cmath>

template <int BYTES>
__global__ void copy_kernel(const unsigned char *src, const int *src_bytes, unsigned char *out) {
  SMEM_ARRAY(unsigned char, buf, 64 * 16);
  int t = threadIdx.x;
  cp_async<BYTES>(&buf[t * BYTES], src + t * BYTES, src_bytes[t]);
  cp_async_commit();
  cp_async_wait<0>();
  __syncthreads();
  /* Each thread reads another thread's copy: only right after wait + barrier. */
  int o = (t + 17) % 64;
  for (int i = 0; i < BYTES; ++i) out[o * BYTES + i] = buf[o * BYTES + i];
}

template <int BYTES>
static void test_sizes(ec::rng &r) {
  std::vector<unsigned char> src(64 * BYTES);
  std::vector<int> sb(64);
  for (unsigned char &c : src) c = (unsigned char)(1 + r.below(250));
  for (int t = 0; t < 64; ++t) sb[t] = t % (BYTES + 1); /* every src-size 0..BYTES */
  ec::dev<unsigned char> dsrc(src), dout(64 * BYTES);
  ec::dev<int> dsb(sb);
  launch(dim3(1), dim3(64), 0, 0, copy_kernel<BYTES>, dsrc.p, dsb.p, dout.p);
  CHECK_LAUNCH("copy_kernel");
  std::vector<unsigned char> out = dout.get();
  int bad = 0;
  for (int t = 0; t < 64; ++t)
    for (int i = 0; i < BYTES; ++i)
      bad += out[t * BYTES + i] != (i < sb[t] ? src[t * BYTES + i] : 0);
  CHECK(bad == 0, "cp.async %d bytes with src-size 0..%d: %d bytes wrong", BYTES, BYTES, bad);
}

/* Three groups; wait_group 2, 1, 0 retire them oldest first. The thread records what its own
   destination holds after each wait (its own copies need no barrier). */
__global__ void group_kernel(const float4 *src, float *seen) {
  SMEM_ARRAY(float4, buf, 3 * 32);
  int t = threadIdx.x;
  for (int g = 0; g < 3; ++g) {
    cp_async<16>(&buf[g * 32 + t], &src[g * 32 + t]);
    cp_async_commit();
  }
  cp_async_wait<2>();
  for (int g = 0; g < 3; ++g) seen[(0 * 3 + g) * 32 + t] = buf[g * 32 + t].x;
  cp_async_wait<1>();
  for (int g = 0; g < 3; ++g) seen[(1 * 3 + g) * 32 + t] = buf[g * 32 + t].x;
  cp_async_wait<0>();
  for (int g = 0; g < 3; ++g) seen[(2 * 3 + g) * 32 + t] = buf[g * 32 + t].x;
  /* An uncommitted copy is retired by wait_all. */
  cp_async<4>(&buf[t].y, &src[t].w);
  cp_async_wait_all();
  seen[9 * 32 + t] = buf[t].y;
}

static void test_groups() {
  std::vector<float4> src(96);
  for (int i = 0; i < 96; ++i) src[i] = make_float4(1.0f + i, 2.0f, 3.0f, 500.0f + i);
  ec::dev<float4> dsrc(src);
  ec::dev<float> seen(10 * 32);
  launch(dim3(1), dim3(32), 0, 0, group_kernel, dsrc.p, seen.p);
  CHECK_LAUNCH("group_kernel");
  std::vector<float> h;
  {
    ec::dump_as off(ec::DUMP_OFF); /* dumped below without the values read before their wait */
    h = seen.get();
  }
  std::vector<float> defined = h;
  int bad = 0, poison_bad = 0;
  for (int w = 0; w < 3; ++w)
    for (int g = 0; g < 3; ++g)
      for (int t = 0; t < 32; ++t) {
        float v = h[(w * 3 + g) * 32 + t];
        bool done = g <= w; /* after wait_group (2 - w), groups 0..w are complete */
        if (done)
          bad += v != 1.0f + g * 32 + t;
        else if (SEQK_ON_EMU)
          poison_bad += !std::isnan(v);
        if (!done) defined[(w * 3 + g) * 32 + t] = 0.0f; /* undefined on a GPU */
      }
  for (int t = 0; t < 32; ++t) bad += h[9 * 32 + t] != 500.0f + t;
  CHECK(bad == 0, "cp.async groups: %d values wrong after their wait", bad);
  CHECK(poison_bad == 0, "cp.async groups: %d values readable before their wait", poison_bad);
  ec::dump(defined);
}

int main() {
  ec::rng r(5);
  test_sizes<4>(r);
  test_sizes<8>(r);
  test_sizes<16>(r);
  test_groups();
  return ec::finish();
}
