/*
 * stream.h - the emulator's stream order and CUDA-graph capture (runtime.cpp), for core.cpp's
 * launches and cublas.cpp's GEMMs. Streams are serial stand-ins: work runs at once, in issue
 * order. Between cudaStreamBeginCapture and cudaStreamEndCapture on a stream, its work is recorded
 * instead (kernel launches, cudaMemcpyAsync/cudaMemsetAsync between device buffers, GEMMs, event
 * records) and runs when cudaGraphLaunch replays the graph. As the runtime does in the default
 * (global) capture mode, a call that would synchronise or allocate while any capture is under way
 * fails with cudaErrorStreamCaptureUnsupported and invalidates the capture: so a library call
 * that hides a host wait or an allocation cannot be captured on the emulator either.
 */
#ifndef SEQK_EMU_STREAM_H
#define SEQK_EMU_STREAM_H

#include <cuda_runtime_api.h>

#include <cstddef>
#include <functional>

namespace seqk_emu {

/* Runs op now, or records it into the capture under way on `stream`. */
void enqueue(cudaStream_t stream, std::function<void()> op);
/* Whether `stream` is capturing (the legacy stream never is). */
bool is_capturing(cudaStream_t stream);
/* For a call that would synchronise or allocate (`call` names it in the report): while a capture
   is under way, records that every capture is invalidated and returns
   cudaErrorStreamCaptureUnsupported (also as the last error); else cudaSuccess. */
cudaError_t refuse_during_capture(const char *call);
/* Adds an emulator report (core.cpp). */
void report(const char *msg);
/* The emulated device's compute capability (80, or 90 with SEQK_EMU_CC=90) and its opt-in
   shared memory per block (runtime.cpp). */
int device_cc();
size_t device_smem_optin();
/* The emulator's cuTensorMapEncodeTiled (core.cpp), for cudaGetDriverEntryPoint. */
void *tensor_map_encode_tiled_entry();

}   // namespace seqk_emu

#endif /* SEQK_EMU_STREAM_H */
