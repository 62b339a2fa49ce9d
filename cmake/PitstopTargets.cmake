# pitstop_target_defaults(<target>): warnings, -Werror (PITSTOP_WERROR) and
# sanitizers (PITSTOP_SANITIZE) for one of our own targets. Never global flags.
function(pitstop_target_defaults target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
    -Wpointer-arith -Wformat=2 -Wno-unused-parameter -Wvla
    -Wimplicit-fallthrough -Wundef)
  target_compile_definitions(${target} PRIVATE _GNU_SOURCE)
  if(PITSTOP_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  if(PITSTOP_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=${PITSTOP_SANITIZE} -fno-omit-frame-pointer)
    target_link_options(${target} PRIVATE -fsanitize=${PITSTOP_SANITIZE})
  endif()
endfunction()
