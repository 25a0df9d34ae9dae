/* consumer_emu.c with the app's own CUDA runtime calls on the emulator: seqk_emu/names.h comes
   first, exactly what compiling consumer_emu.c with -include seqk_emu/names.h does. */
#include <seqk_emu/names.h>
#define CONSUMER_OWN_CUDA 1
#include "consumer_emu.c"
