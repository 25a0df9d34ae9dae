# Writes OUT (bench_commit.h: #define BENCH_COMMIT "<short hash>[-dirty]") from the git checkout
# at SRC, on every build, rewriting the file only when the text changes (so nothing recompiles
# when the commit is the same). Outside a git checkout: "unknown".
execute_process(COMMAND git -C "${SRC}" rev-parse --short HEAD OUTPUT_VARIABLE _commit
                OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0 OR _commit STREQUAL "")
  set(_commit "unknown")
else()
  execute_process(COMMAND git -C "${SRC}" diff --quiet HEAD -- RESULT_VARIABLE _dirty ERROR_QUIET)
  if(NOT _dirty EQUAL 0)
    set(_commit "${_commit}-dirty")
  endif()
endif()
set(_text "#define BENCH_COMMIT \"${_commit}\"\n")
if(EXISTS "${OUT}")
  file(READ "${OUT}" _old)
else()
  set(_old "")
endif()
if(NOT _old STREQUAL _text)
  file(WRITE "${OUT}" "${_text}")
endif()
