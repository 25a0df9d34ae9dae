/*
 * seqk_emu/report.h - what the emulator found: kernel errors (barrier divergence, deadlock, warp
 * collective mask mismatches, shared-memory overflows, misaligned or non-shared ldmatrix/cp.async
 * addresses, bad launch configurations). C-callable so C tests can assert on reports.
 *
 * Every report is also printed to stderr ("seqk_emu: ...") unless SEQK_EMU_QUIET=1, and makes the
 * launch fail: cudaGetLastError() returns cudaErrorLaunchFailure (or cudaErrorInvalidConfiguration
 * / cudaErrorInvalidValue for a launch that could not start).
 */
#ifndef SEQK_EMU_REPORT_H
#define SEQK_EMU_REPORT_H

#ifdef __cplusplus
extern "C" {
#endif

/* Reports made since the process started (or the last seqk_emu_clear_reports). */
unsigned long seqk_emu_report_count(void);
/* All reports since the last clear, one per line; valid until the next report or clear. */
const char *seqk_emu_reports(void);
void seqk_emu_clear_reports(void);

/* The thread order in force: "forward", "reverse" or "random:<seed>" (from SEQK_EMU_SCHEDULE). */
const char *seqk_emu_schedule(void);
/* Overrides SEQK_EMU_SCHEDULE for later launches (tests that loop over orders); NULL = the
   environment's order again. Returns 0, or -1 for a malformed string. */
int seqk_emu_set_schedule(const char *order);

#ifdef __cplusplus
}
#endif

#endif /* SEQK_EMU_REPORT_H */
