# Cross build for IBM Z (s390x), 64-bit big-endian:
#   cmake -S . -B build-s390x -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/s390x.cmake
# or `scripts/run cross`, which installs what it needs and runs the unit tests (qemu-user).
set(PDW_CROSS_TRIPLET s390x-linux-gnu)
set(PDW_CROSS_PROCESSOR s390x)
set(PDW_CROSS_QEMU qemu-s390x)
include(${CMAKE_CURRENT_LIST_DIR}/debian-cross.cmake)
