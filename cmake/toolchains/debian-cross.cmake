# Shared part of the Debian cross toolchain files (aarch64.cmake, armhf.cmake, s390x.cmake):
# the include file sets PDW_CROSS_TRIPLET, PDW_CROSS_PROCESSOR and PDW_CROSS_QEMU first.
#
# What it expects (scripts/run cross installs it, docs/TESTING.md "Other architectures"):
#   gcc-<triplet>, libc6-dev-<arch>-cross      the cross compiler and its C library
#   libjansson-dev:<arch> libcmocka-dev:<arch>  multiarch libraries in /usr/lib/<triplet>
#   qemu-user                                   qemu-<cpu>, to run the test binaries
#
# The tests run through the emulator (CMAKE_CROSSCOMPILING_EMULATOR), so binfmt_misc need
# not be set up. No -L: the target's loader is found at its usual path
# (/lib/ld-linux-armhf.so.3, ...) once libc6:<arch> is installed, and `-L /usr/<triplet>`
# can hang qemu at the first pthread_create.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR ${PDW_CROSS_PROCESSOR})

set(CMAKE_C_COMPILER ${PDW_CROSS_TRIPLET}-gcc)
find_program(PDW_CROSS_CXX ${PDW_CROSS_TRIPLET}-g++)
if(PDW_CROSS_CXX)
  set(CMAKE_CXX_COMPILER ${PDW_CROSS_CXX})
endif()
set(CMAKE_LIBRARY_ARCHITECTURE ${PDW_CROSS_TRIPLET})

# Headers and libraries of the target only (the cross C library in /usr/<triplet>, the
# multiarch ones in /usr/lib/<triplet> under /); programs (pkg-config, sh) of the host.
set(CMAKE_FIND_ROOT_PATH /usr/${PDW_CROSS_TRIPLET} /)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# pkg-config sees the target's .pc files only, never the host's.
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/${PDW_CROSS_TRIPLET}/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")

find_program(PDW_CROSS_EMULATOR ${PDW_CROSS_QEMU})
if(NOT PDW_CROSS_EMULATOR)
  message(FATAL_ERROR "${PDW_CROSS_QEMU} not found (apt-get install qemu-user)")
endif()
set(CMAKE_CROSSCOMPILING_EMULATOR ${PDW_CROSS_EMULATOR})
