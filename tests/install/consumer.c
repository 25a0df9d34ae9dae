/* An application that links an installed seqk: runs one op on CPU tensors and checks it. */
#include <math.h>
#include <seqk.h>
#include <stdio.h>

int main(void) {
  if (seqk_version() != SEQK_VERSION) {
    fprintf(stderr, "header %d but library %d\n", SEQK_VERSION, seqk_version());
    return 1;
  }
  seqk_context_t ctx;
  if (seqk_context_create(&ctx) != SEQK_STATUS_SUCCESS) return 1;
  float x[3] = {1.0f, 2.0f, 3.0f}, y[3];
  int64_t shape[1] = {3};
  seqk_tensor tx = seqk_tensor_view(x, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 1, shape);
  seqk_tensor ty = seqk_tensor_view(y, SEQK_DTYPE_F32, SEQK_DEVICE_CPU, 1, shape);
  seqk_status st = seqk_softmax(ctx, &tx, 0, &ty);
  seqk_context_destroy(ctx);
  /* softmax([1, 2, 3]) = 0.0900 0.2447 0.6652 */
  if (st != SEQK_STATUS_SUCCESS || fabsf(y[0] - 0.09003057f) > 1e-6f ||
      fabsf(y[2] - 0.66524096f) > 1e-6f) {
    fprintf(stderr, "softmax gave %s: %f %f %f\n", seqk_status_string(st), y[0], y[1], y[2]);
    return 1;
  }
  printf("installed seqk %d works\n", seqk_version());
  return 0;
}
