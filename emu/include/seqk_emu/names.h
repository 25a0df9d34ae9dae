/*
 * names.h - the emulator's CUDA runtime and cuBLAS stand-ins under names of their own.
 *
 * emu/src/runtime.cpp and cublas.cpp implement the toolkit's declarations (cuda_runtime_api.h,
 * cublas_api.h). Under their real names, an application that links seqk_emu next to a real CUDA
 * runtime or cuBLAS (a test binary that also drives a GPU, a process that loads both) would get
 * duplicate or silently interposed symbols. This header, included before anything else in every
 * source compiled against the emulator (the build passes it with -include), renames each one to
 * seqk_emu_<name>: the toolkit's own declarations, the library's calls and the emulator's
 * definitions all see the new name, so libseqk_emu.a defines no cuda* or cublas* symbol
 * (CTest emu_symbols checks every strong global symbol of the archive).
 *
 * An application that wants its own CUDA runtime calls (cudaMalloc for buffers it hands to seqk
 * as CUDA tensors, cudaMemcpy, streams, events) to reach the emulator compiles those sources with
 *     -include seqk_emu/names.h
 * (installed next to seqk.h); sources compiled without it keep calling the real runtime.
 *
 * Every function the emulator defines is listed here; one that is not would show up as an
 * unrenamed symbol in emu_symbols.
 */
#ifndef SEQK_EMU_NAMES_H
#define SEQK_EMU_NAMES_H

/* CUDA runtime (emu/src/runtime.cpp) */
#define cudaGraphDestroy seqk_emu_cudaGraphDestroy
#define cudaGraphExecDestroy seqk_emu_cudaGraphExecDestroy
#define cudaGraphInstantiate seqk_emu_cudaGraphInstantiate
#define cudaGraphLaunch seqk_emu_cudaGraphLaunch
#define cudaStreamBeginCapture seqk_emu_cudaStreamBeginCapture
#define cudaStreamEndCapture seqk_emu_cudaStreamEndCapture
#define cudaStreamIsCapturing seqk_emu_cudaStreamIsCapturing
#define cudaDeviceGetAttribute seqk_emu_cudaDeviceGetAttribute
#define cudaDeviceSynchronize seqk_emu_cudaDeviceSynchronize
#define cudaEventCreate seqk_emu_cudaEventCreate
#define cudaEventCreateWithFlags seqk_emu_cudaEventCreateWithFlags
#define cudaEventDestroy seqk_emu_cudaEventDestroy
#define cudaEventElapsedTime seqk_emu_cudaEventElapsedTime
#define cudaEventQuery seqk_emu_cudaEventQuery
#define cudaEventRecord seqk_emu_cudaEventRecord
#define cudaEventSynchronize seqk_emu_cudaEventSynchronize
#define cudaFree seqk_emu_cudaFree
#define cudaFuncSetAttribute seqk_emu_cudaFuncSetAttribute
#define cudaGetDevice seqk_emu_cudaGetDevice
#define cudaGetDriverEntryPoint seqk_emu_cudaGetDriverEntryPoint
#define cudaGetDriverEntryPointByVersion seqk_emu_cudaGetDriverEntryPointByVersion
#define cudaGetDeviceCount seqk_emu_cudaGetDeviceCount
#define cudaGetDeviceProperties seqk_emu_cudaGetDeviceProperties
#define cudaGetErrorName seqk_emu_cudaGetErrorName
#define cudaGetErrorString seqk_emu_cudaGetErrorString
#define cudaGetLastError seqk_emu_cudaGetLastError
#define cudaMalloc seqk_emu_cudaMalloc
#define cudaMemGetInfo seqk_emu_cudaMemGetInfo
#define cudaMemcpy seqk_emu_cudaMemcpy
#define cudaMemcpyAsync seqk_emu_cudaMemcpyAsync
#define cudaMemset seqk_emu_cudaMemset
#define cudaMemsetAsync seqk_emu_cudaMemsetAsync
#define cudaPeekAtLastError seqk_emu_cudaPeekAtLastError
#define cudaPointerGetAttributes seqk_emu_cudaPointerGetAttributes
#define cudaSetDevice seqk_emu_cudaSetDevice
#define cudaStreamCreate seqk_emu_cudaStreamCreate
#define cudaStreamCreateWithFlags seqk_emu_cudaStreamCreateWithFlags
#define cudaStreamDestroy seqk_emu_cudaStreamDestroy
#define cudaStreamQuery seqk_emu_cudaStreamQuery
#define cudaStreamSynchronize seqk_emu_cudaStreamSynchronize
#define cudaStreamWaitEvent seqk_emu_cudaStreamWaitEvent

/* cuBLAS (emu/src/cublas.cpp; cublas_v2.h maps cublasCreate to cublasCreate_v2 and so on,
   and the macros below take it from there) */
#define cublasCreate_v2 seqk_emu_cublasCreate_v2
#define cublasDestroy_v2 seqk_emu_cublasDestroy_v2
#define cublasGemmEx seqk_emu_cublasGemmEx
#define cublasGemmStridedBatchedEx seqk_emu_cublasGemmStridedBatchedEx
#define cublasGetMathMode seqk_emu_cublasGetMathMode
#define cublasGetStatusName seqk_emu_cublasGetStatusName
#define cublasGetStatusString seqk_emu_cublasGetStatusString
#define cublasGetStream_v2 seqk_emu_cublasGetStream_v2
#define cublasSetMathMode seqk_emu_cublasSetMathMode
#define cublasSetPointerMode_v2 seqk_emu_cublasSetPointerMode_v2
#define cublasSetStream_v2 seqk_emu_cublasSetStream_v2
#define cublasSgemmStridedBatched seqk_emu_cublasSgemmStridedBatched
#define cublasSgemm_v2 seqk_emu_cublasSgemm_v2

#endif /* SEQK_EMU_NAMES_H */
