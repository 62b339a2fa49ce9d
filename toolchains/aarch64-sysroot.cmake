# Cross-build for aarch64 against a sysroot directory (PITSTOP_SYSROOT, made
# by scripts/cross-aarch64 --sysroot from Debian's arm64 packages without
# adding the arm64 architecture to the host). Tests run through qemu-user.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
# try_compile reads this file again without the cache: keep the path in the
# environment too.
if(NOT PITSTOP_SYSROOT)
  set(PITSTOP_SYSROOT "$ENV{PITSTOP_SYSROOT}")
endif()
set(ENV{PITSTOP_SYSROOT} "${PITSTOP_SYSROOT}")
if(NOT PITSTOP_SYSROOT OR NOT EXISTS "${PITSTOP_SYSROOT}/usr/lib/aarch64-linux-gnu/libc.so")
  message(FATAL_ERROR "PITSTOP_SYSROOT='${PITSTOP_SYSROOT}' is not a sysroot: make one with scripts/cross-aarch64 --sysroot DIR")
endif()
set(CMAKE_SYSROOT "${PITSTOP_SYSROOT}")
set(CMAKE_FIND_ROOT_PATH "${PITSTOP_SYSROOT}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
set(ENV{PKG_CONFIG_SYSROOT_DIR} "${PITSTOP_SYSROOT}")
set(ENV{PKG_CONFIG_LIBDIR} "${PITSTOP_SYSROOT}/usr/lib/aarch64-linux-gnu/pkgconfig:${PITSTOP_SYSROOT}/usr/share/pkgconfig")
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64-static -L "${PITSTOP_SYSROOT}")
