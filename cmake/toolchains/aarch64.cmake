# Cross build for 64-bit ARM (arm64), little-endian:
#   cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64.cmake
# or `scripts/run cross`, which installs what it needs and runs the unit tests (qemu-user).
set(PDW_CROSS_TRIPLET aarch64-linux-gnu)
set(PDW_CROSS_PROCESSOR aarch64)
set(PDW_CROSS_QEMU qemu-aarch64)
include(${CMAKE_CURRENT_LIST_DIR}/debian-cross.cmake)
