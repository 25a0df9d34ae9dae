/* Compiled WITHOUT seqk_emu/names.h: this cudaGetDeviceCount is the real CUDA runtime's, linked
   into the same program as seqk_emu (whose stand-ins are seqk_emu_cuda*: no clash). */
#include <cuda_runtime_api.h>

int real_cuda_device_count(int *count) { return (int)cudaGetDeviceCount(count); }
