/*
 * example_util.h - the little bit of glue the seqk examples share: printing a tensor the way
 * torch prints it, comparing results, stopping on an error, and running one model a second time
 * on CUDA tensors (when there is a GPU) to check it gives the CPU's numbers.
 *
 * Everything here uses only the public header seqk.h, like an application would.
 */
#ifndef SEQK_EXAMPLE_UTIL_H
#define SEQK_EXAMPLE_UTIL_H

#include <stdint.h>

#include "seqk.h"

/* Stops the program (exit status 1) unless status is SEQK_STATUS_SUCCESS, printing what was
   being done, the status and seqk_context_last_error(ctx). */
void ex_check(seqk_context_t ctx, seqk_status status, const char *what);

/* Prints "label" and then t like torch prints a tensor, 4 decimals:
     tensor([[0.0900, 0.2447, 0.6652],
             [0.6285, 0.2312, 0.1402]])
   t must be an F32 tensor on the CPU; any strides. */
void ex_print(const char *label, const seqk_tensor *t);

/* Element i of t in row-major order (as if t were contiguous); t is F32 on the CPU. */
float ex_get(const seqk_tensor *t, int64_t i);

/* Stops the program (exit 1) unless |got - want| <= atol + rtol*|want| for every element.
   got and want are F32 CPU tensors of the same shape; `what` names the comparison. */
void ex_expect_close(const char *what, const seqk_tensor *got, const seqk_tensor *want, double atol,
                     double rtol);

/* The same against a plain array of the expected values in row-major order (values printed by a
   seed, or computed by a plain C loop). */
void ex_expect_values(const char *what, const seqk_tensor *got, const float *want, double atol,
                      double rtol);

/* How far a result may move when the same math runs elsewhere (a GPU sums in float and in
   another order than the CPU reference, which sums in double): per dtype, atol and rtol. */
void ex_tolerance(seqk_dtype dtype, double *atol, double *rtol);

/* Deterministic "weights" for the examples, so that no random generator is needed and every run
   prints the same numbers: element i of parameter number `id`. EX_WEIGHT_FORMULA is its text. */
float ex_weight(int id, int64_t i);
#define EX_WEIGHT_FORMULA                                                                          \
  "w[i] = ((7*i + 13*id) mod 17 - 8) / 16   (i: row-major index, id: parameter number)"

/* Fills a float array of n elements with ex_weight(id, 0..n-1) and returns it. */
float *ex_fill(float *buf, int64_t n, int id);

/* ---- running a model on the CPU and, when there is a GPU, again on CUDA -------------------------
 *
 * A model is written once as a function over tensors on any device: it reads in[0..n_in), writes
 * out[0..n_out) (intermediates it wants to keep go there too), and returns the status of the
 * first seqk call that failed, naming that op in *failed_op. EX_TRY does this bookkeeping:
 *
 *   EX_TRY("softmax", seqk_softmax(ctx, &in[0], 1, &out[0]));
 */
typedef seqk_status (*ex_model_fn)(seqk_context_t ctx, const void *user, const seqk_tensor *in,
                                   seqk_tensor *out, const char **failed_op);

#define EX_TRY(op_name, call)                                                                      \
  do {                                                                                             \
    seqk_status ex_status_ = (call);                                                               \
    if (ex_status_ != SEQK_STATUS_SUCCESS) {                                                       \
      *failed_op = (op_name);                                                                      \
      return ex_status_;                                                                           \
    }                                                                                              \
  } while (0)

/* Runs `model` on the CPU tensors in[] / out[] (stopping the program on any error), then, if
   seqk_cuda_device_count() > 0, copies in[] to the GPU with seqk_tensor_copy, runs the model
   there, copies the outputs back and checks them against the CPU's within ex_tolerance.
   An op without a CUDA kernel yet (SEQK_STATUS_NOT_SUPPORTED) prints
   "CUDA: <op> not available yet, skipped"; any other error stops the program. */
void ex_run_model(seqk_context_t ctx, const char *name, ex_model_fn model, const void *user,
                  int n_in, const seqk_tensor *in, int n_out, seqk_tensor *out);

#endif /* SEQK_EXAMPLE_UTIL_H */
