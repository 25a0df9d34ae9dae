/*
 * tensor.h - what the context needs of tensor.c: the release of the tensors still allocated
 * through it. Not installed.
 */
#ifndef SEQK_TENSOR_H
#define SEQK_TENSOR_H

#include "internal.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Frees every tensor still recorded in ctx (context destruction, after the stream is idle). */
void seqk__release_allocations(seqk_context_t ctx);

#ifdef __cplusplus
}
#endif

#endif /* SEQK_TENSOR_H */
