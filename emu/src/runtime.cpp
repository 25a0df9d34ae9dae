/*
 * runtime.cpp - the CUDA runtime entry points the library and the tests use, for the emulated
 * build, with the toolkit's own declarations (cuda_runtime_api.h), so host code compiles
 * unchanged. One device; device memory is host memory from the C allocator, so ASan sees every
 * out-of-bounds access by a kernel or a copy. Streams and events are serial stand-ins: every
 * operation completes before its call returns.
 */
#include <cuda_runtime_api.h>

#include "stream.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <vector>
#include <memory>
#include <functional>

namespace seqk_emu {
namespace {

thread_local cudaError_t tl_last_error = cudaSuccess;
std::mutex g_mutex;
std::map<const void *, size_t> g_allocs;    /* device allocations: pointer -> bytes */
std::map<const void *, int> g_max_dyn_smem; /* cudaFuncAttributeMaxDynamicSharedMemorySize */
std::set<const void *> g_streams, g_events;
size_t g_allocated = 0;

constexpr size_t kTotalMem = size_t(8) << 30; /* what the emulated device reports */

cudaError_t record(cudaError_t e) {
  if (e != cudaSuccess) tl_last_error = e;
  return e;
}

struct CUevent_rec {
  double ms = 0;
  bool recorded = false;
};

double now_ms() {
  return std::chrono::duration<double, std::milli>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}   // namespace

void set_launch_error(cudaError_t err) { record(err); }

/* The emulated device's compute capability: 8.0 (an A100's model), or 9.0 (an H100's: 227 KB of
   opt-in shared memory; the dispatcher then picks the Hopper kernels) with SEQK_EMU_CC=90. */
int device_cc() {
  static const int cc = [] {
    const char *e = getenv("SEQK_EMU_CC");
    return e && strcmp(e, "90") == 0 ? 90 : 80;
  }();
  return cc;
}
size_t device_smem_optin() { return device_cc() >= 90 ? 227 * 1024 : 163 * 1024; }

cudaError_t max_dyn_smem_for(const void *kernel, size_t *bytes) {
  std::lock_guard<std::mutex> lock(g_mutex);
  auto it = g_max_dyn_smem.find(kernel);
  if (it != g_max_dyn_smem.end()) *bytes = (size_t)it->second;
  return cudaSuccess;
}

}   // namespace seqk_emu

using namespace seqk_emu;

struct CUstream_st {
  /* Under capture: the work recorded so far (CUgraph_st's nodes), and whether an unsafe call
     invalidated it. */
  std::shared_ptr<std::vector<std::function<void()>>> capture;
  bool invalidated = false;
};
struct CUevent_st {
  CUevent_rec rec;
};
struct CUgraph_st {
  std::shared_ptr<std::vector<std::function<void()>>> nodes;
};
struct CUgraphExec_st {
  std::shared_ptr<std::vector<std::function<void()>>> nodes;
};

/* ---- stream order and capture (stream.h) --------------------------------------------------------- */
namespace seqk_emu {
namespace {
std::mutex g_capture_mutex;
std::set<cudaStream_t> g_capturing; /* streams with a capture under way */
}   // namespace

bool is_capturing(cudaStream_t stream) {
  if (!stream) return false;
  std::lock_guard<std::mutex> lock(g_capture_mutex);
  return g_capturing.count(stream) != 0;
}

void enqueue(cudaStream_t stream, std::function<void()> op) {
  {
    std::lock_guard<std::mutex> lock(g_capture_mutex);
    if (stream && g_capturing.count(stream)) {
      stream->capture->push_back(std::move(op));
      return;
    }
  }
  op();
}

cudaError_t refuse_during_capture(const char *call) {
  std::lock_guard<std::mutex> lock(g_capture_mutex);
  if (g_capturing.empty()) return cudaSuccess;
  for (cudaStream_t s : g_capturing) s->invalidated = true;
  char msg[256];
  snprintf(msg, sizeof msg,
           "%s during a stream capture: not permitted (it would synchronise or allocate); the "
           "capture is invalidated",
           call);
  report(msg);
  return record(cudaErrorStreamCaptureUnsupported);
}
}   // namespace seqk_emu

extern "C" {

cudaError_t cudaGetDeviceCount(int *count) {
  if (!count) return record(cudaErrorInvalidValue);
  *count = 1;
  return cudaSuccess;
}

cudaError_t cudaGetDevice(int *device) {
  if (!device) return record(cudaErrorInvalidValue);
  *device = 0;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
  return device == 0 ? cudaSuccess : record(cudaErrorInvalidDevice);
}

cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *prop, int device) {
  if (!prop) return record(cudaErrorInvalidValue);
  if (device != 0) return record(cudaErrorInvalidDevice);
  memset(prop, 0, sizeof *prop);
  snprintf(prop->name, sizeof prop->name, "seqk emulated device (sm_%d model)", device_cc());
  prop->totalGlobalMem = kTotalMem;
  prop->sharedMemPerBlock = 48 * 1024;
  prop->sharedMemPerBlockOptin = device_smem_optin();
  prop->sharedMemPerMultiprocessor = 164 * 1024;
  prop->regsPerBlock = 65536;
  prop->regsPerMultiprocessor = 65536;
  prop->warpSize = 32;
  prop->maxThreadsPerBlock = 1024;
  prop->maxThreadsDim[0] = 1024;
  prop->maxThreadsDim[1] = 1024;
  prop->maxThreadsDim[2] = 64;
  prop->maxGridSize[0] = 2147483647;
  prop->maxGridSize[1] = 65535;
  prop->maxGridSize[2] = 65535;
  prop->totalConstMem = 65536;
  prop->major = device_cc() / 10;
  prop->minor = 0;
  prop->multiProcessorCount = 8;
  prop->maxThreadsPerMultiProcessor = 2048;
  prop->maxBlocksPerMultiProcessor = 32;
  prop->l2CacheSize = 4 << 20;
  prop->cooperativeLaunch = 1;
  prop->concurrentKernels = 0;
  prop->unifiedAddressing = 1;
  prop->memoryBusWidth = 256;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int *value, enum cudaDeviceAttr attr, int device) {
  if (!value) return record(cudaErrorInvalidValue);
  if (device != 0) return record(cudaErrorInvalidDevice);
  switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock: *value = 1024; break;
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = 48 * 1024; break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = (int)device_smem_optin(); break;
    case cudaDevAttrWarpSize: *value = 32; break;
    case cudaDevAttrMultiProcessorCount: *value = 8; break;
    case cudaDevAttrComputeCapabilityMajor: *value = device_cc() / 10; break;
    case cudaDevAttrComputeCapabilityMinor: *value = 0; break;
    case cudaDevAttrCooperativeLaunch: *value = 1; break;
    case cudaDevAttrMaxBlockDimX: *value = 1024; break;
    case cudaDevAttrMaxBlockDimY: *value = 1024; break;
    case cudaDevAttrMaxBlockDimZ: *value = 64; break;
    case cudaDevAttrMaxGridDimX: *value = 2147483647; break;
    case cudaDevAttrMaxGridDimY: *value = 65535; break;
    case cudaDevAttrMaxGridDimZ: *value = 65535; break;
    case cudaDevAttrMaxThreadsPerMultiProcessor: *value = 2048; break;
    default: return record(cudaErrorInvalidValue);
  }
  return cudaSuccess;
}

cudaError_t cudaMalloc(void **ptr, size_t bytes) {
  if (cudaError_t e = refuse_during_capture("cudaMalloc")) return e;
  if (!ptr) return record(cudaErrorInvalidValue);
  *ptr = nullptr;
  if (bytes == 0) return cudaSuccess;
  std::lock_guard<std::mutex> lock(g_mutex);
  if (bytes > kTotalMem - g_allocated) return record(cudaErrorMemoryAllocation);
  void *p = nullptr;
  /* 256-byte aligned like cudaMalloc; exact size so ASan catches a kernel reading one past. */
  if (posix_memalign(&p, 256, bytes) != 0 || !p) return record(cudaErrorMemoryAllocation);
  memset(p, 0xCD, bytes); /* device memory is not zeroed: do not let code rely on it */
  g_allocs[p] = bytes;
  g_allocated += bytes;
  *ptr = p;
  return cudaSuccess;
}

/* Device memory is what cudaMalloc returned (any address inside an allocation); anything else is
   unregistered host memory, as the runtime reports for plain malloc'd memory since CUDA 11. */
cudaError_t cudaPointerGetAttributes(struct cudaPointerAttributes *attributes, const void *ptr) {
  if (!attributes) return record(cudaErrorInvalidValue);
  std::lock_guard<std::mutex> lock(g_mutex);
  memset(attributes, 0, sizeof *attributes);
  attributes->type = cudaMemoryTypeUnregistered;
  attributes->device = -2;
  auto it = g_allocs.upper_bound(ptr);
  if (it != g_allocs.begin()) {
    --it;
    const char *base = static_cast<const char *>(it->first);
    if (static_cast<const char *>(ptr) < base + it->second) {
      attributes->type = cudaMemoryTypeDevice;
      attributes->device = 0;
      attributes->devicePointer = const_cast<void *>(ptr);
    }
  }
  return cudaSuccess;
}

cudaError_t cudaFree(void *ptr) {
  if (cudaError_t e = refuse_during_capture("cudaFree")) return e;
  if (!ptr) return cudaSuccess;
  std::lock_guard<std::mutex> lock(g_mutex);
  auto it = g_allocs.find(ptr);
  if (it == g_allocs.end()) return record(cudaErrorInvalidValue);
  g_allocated -= it->second;
  g_allocs.erase(it);
  free(ptr);
  return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (free_bytes) *free_bytes = kTotalMem - g_allocated;
  if (total) *total = kTotalMem;
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t count, enum cudaMemcpyKind kind) {
  if (cudaError_t e = refuse_during_capture("cudaMemcpy")) return e;
  if (count == 0) return cudaSuccess;
  if (!dst || !src || (int)kind < 0 || (int)kind > 4) return record(cudaErrorInvalidValue);
  memcpy(dst, src, count); /* ASan: out-of-bounds and overlapping ranges are reported */
  return cudaSuccess;
}

static bool is_device_memory(const void *p) {
  std::lock_guard<std::mutex> lock(g_mutex);
  auto it = g_allocs.upper_bound(p);
  if (it == g_allocs.begin()) return false;
  --it;
  return static_cast<const char *>(p) < static_cast<const char *>(it->first) + it->second;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t count, enum cudaMemcpyKind kind,
                            cudaStream_t stream) {
  if (count == 0) return cudaSuccess;
  if (!dst || !src || (int)kind < 0 || (int)kind > 4) return record(cudaErrorInvalidValue);
  if (is_capturing(stream)) {
    /* A copy from or to pageable host memory is a host round trip: not capturable. */
    if (!is_device_memory(dst) || !is_device_memory(src))
      return refuse_during_capture("cudaMemcpyAsync with host memory");
    enqueue(stream, [=] { memcpy(dst, src, count); });
    return cudaSuccess;
  }
  memcpy(dst, src, count);
  return cudaSuccess;
}

cudaError_t cudaMemset(void *ptr, int value, size_t count) {
  if (cudaError_t e = refuse_during_capture("cudaMemset")) return e;
  if (count == 0) return cudaSuccess;
  if (!ptr) return record(cudaErrorInvalidValue);
  memset(ptr, value, count);
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void *ptr, int value, size_t count, cudaStream_t stream) {
  if (count == 0) return cudaSuccess;
  if (!ptr) return record(cudaErrorInvalidValue);
  enqueue(stream, [=] { memset(ptr, value, count); });
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize(void) { return refuse_during_capture("cudaDeviceSynchronize"); }

/* Driver entry points: the emulator's own cuTensorMapEncodeTiled (introduced in CUDA 12.0);
   every other symbol is "not found", as for a driver without it. */
cudaError_t cudaGetDriverEntryPointByVersion(const char *symbol, void **funcPtr,
                                             unsigned int cudaVersion, unsigned long long flags,
                                             enum cudaDriverEntryPointQueryResult *driverStatus) {
  (void)flags;
  if (!symbol || !funcPtr) return record(cudaErrorInvalidValue);
  *funcPtr = nullptr;
  enum cudaDriverEntryPointQueryResult st = cudaDriverEntryPointSymbolNotFound;
  if (strcmp(symbol, "cuTensorMapEncodeTiled") == 0) {
    if (cudaVersion >= 12000) {
      *funcPtr = tensor_map_encode_tiled_entry();
      st = cudaDriverEntryPointSuccess;
    } else {
      st = cudaDriverEntryPointVersionNotSufficent;
    }
  }
  if (driverStatus) *driverStatus = st;
  return cudaSuccess;
}

cudaError_t cudaGetDriverEntryPoint(const char *symbol, void **funcPtr, unsigned long long flags,
                                    enum cudaDriverEntryPointQueryResult *driverStatus) {
  return cudaGetDriverEntryPointByVersion(symbol, funcPtr, CUDART_VERSION, flags, driverStatus);
}

cudaError_t cudaStreamCreate(cudaStream_t *stream) {
  if (!stream) return record(cudaErrorInvalidValue);
  *stream = new CUstream_st();
  std::lock_guard<std::mutex> lock(g_mutex);
  g_streams.insert(*stream);
  return cudaSuccess;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *stream, unsigned int flags) {
  (void)flags;
  return cudaStreamCreate(stream);
}

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (!g_streams.erase(stream)) return record(cudaErrorInvalidResourceHandle);
  delete stream;
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  (void)stream;
  return refuse_during_capture("cudaStreamSynchronize");
}

cudaError_t cudaStreamQuery(cudaStream_t stream) {
  if (is_capturing(stream)) return refuse_during_capture("cudaStreamQuery on a capturing stream");
  return cudaSuccess;
}

/* ---- capture and graphs: recorded work replayed in order (stream.h) ------------------------------ */
cudaError_t cudaStreamBeginCapture(cudaStream_t stream, enum cudaStreamCaptureMode mode) {
  (void)mode; /* every mode is treated as global: the strictest */
  if (!stream) return record(cudaErrorStreamCaptureUnsupported); /* not the legacy stream */
  std::lock_guard<std::mutex> lock(g_capture_mutex);
  if (g_capturing.count(stream)) return record(cudaErrorIllegalState);
  stream->capture = std::make_shared<std::vector<std::function<void()>>>();
  stream->invalidated = false;
  g_capturing.insert(stream);
  return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t *graph) {
  if (!graph) return record(cudaErrorInvalidValue);
  *graph = nullptr;
  std::lock_guard<std::mutex> lock(g_capture_mutex);
  if (!stream || !g_capturing.erase(stream)) return record(cudaErrorIllegalState);
  auto nodes = std::move(stream->capture);
  stream->capture.reset();
  if (stream->invalidated) return record(cudaErrorStreamCaptureInvalidated);
  *graph = new CUgraph_st{std::move(nodes)};
  return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t stream, enum cudaStreamCaptureStatus *status) {
  if (!status) return record(cudaErrorInvalidValue);
  std::lock_guard<std::mutex> lock(g_capture_mutex);
  *status = !stream || !g_capturing.count(stream) ? cudaStreamCaptureStatusNone
            : stream->invalidated                 ? cudaStreamCaptureStatusInvalidated
                                                  : cudaStreamCaptureStatusActive;
  return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph,
                                 unsigned long long flags) {
  (void)flags;
  if (!exec || !graph) return record(cudaErrorInvalidValue);
  *exec = new CUgraphExec_st{graph->nodes};
  return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
  if (!exec) return record(cudaErrorInvalidValue);
  auto nodes = exec->nodes;
  enqueue(stream, [nodes] {
    for (auto &node : *nodes) node();
  });
  return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  delete exec;
  return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  delete graph;
  return cudaSuccess;
}

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags) {
  (void)stream;
  (void)event;
  (void)flags;
  return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t *event) {
  if (!event) return record(cudaErrorInvalidValue);
  *event = new CUevent_st();
  std::lock_guard<std::mutex> lock(g_mutex);
  g_events.insert(*event);
  return cudaSuccess;
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *event, unsigned int flags) {
  (void)flags;
  return cudaEventCreate(event);
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (!g_events.erase(event)) return record(cudaErrorInvalidResourceHandle);
  delete event;
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  if (!event) return record(cudaErrorInvalidResourceHandle);
  enqueue(stream, [event] {
    event->rec.ms = now_ms();
    event->rec.recorded = true;
  });
  return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  if (cudaError_t e = refuse_during_capture("cudaEventSynchronize")) return e;
  return event ? cudaSuccess : record(cudaErrorInvalidResourceHandle);
}

cudaError_t cudaEventQuery(cudaEvent_t event) {
  return event ? cudaSuccess : record(cudaErrorInvalidResourceHandle);
}

cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end) {
  if (!ms || !start || !end) return record(cudaErrorInvalidValue);
  if (!start->rec.recorded || !end->rec.recorded) return record(cudaErrorInvalidResourceHandle);
  *ms = (float)(end->rec.ms - start->rec.ms);
  return cudaSuccess;
}

cudaError_t cudaFuncSetAttribute(const void *func, enum cudaFuncAttribute attr, int value) {
  if (!func) return record(cudaErrorInvalidDeviceFunction);
  if (attr == cudaFuncAttributeMaxDynamicSharedMemorySize) {
    if (value < 0 || (size_t)value > device_smem_optin()) return record(cudaErrorInvalidValue);
    std::lock_guard<std::mutex> lock(g_mutex);
    g_max_dyn_smem[func] = value;
  }
  return cudaSuccess;
}

cudaError_t cudaGetLastError(void) {
  cudaError_t e = tl_last_error;
  tl_last_error = cudaSuccess;
  return e;
}

cudaError_t cudaPeekAtLastError(void) { return tl_last_error; }

const char *cudaGetErrorName(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorInvalidDeviceFunction: return "cudaErrorInvalidDeviceFunction";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorCooperativeLaunchTooLarge: return "cudaErrorCooperativeLaunchTooLarge";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorStreamCaptureUnsupported: return "cudaErrorStreamCaptureUnsupported";
    case cudaErrorStreamCaptureInvalidated: return "cudaErrorStreamCaptureInvalidated";
    case cudaErrorIllegalState: return "cudaErrorIllegalState";
    default: return "cudaErrorUnknown";
  }
}

const char *cudaGetErrorString(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorInvalidDeviceFunction: return "invalid device function";
    case cudaErrorLaunchFailure:
      return "unspecified launch failure (seqk_emu found a kernel error: see its report)";
    case cudaErrorCooperativeLaunchTooLarge: return "too many blocks in cooperative launch";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorStreamCaptureUnsupported:
      return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated:
      return "operation failed due to a previous error during capture";
    case cudaErrorIllegalState: return "the operation cannot be performed in the present state";
    default: return "unknown error";
  }
}

}   // extern "C"
