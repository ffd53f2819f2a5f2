# Cross build for 32-bit ARM (armhf), little-endian; 32-bit long, size_t and pointers:
#   cmake -S . -B build-armhf -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/armhf.cmake
# or `scripts/run cross`, which installs what it needs and runs the unit tests (qemu-user).
set(PDW_CROSS_TRIPLET arm-linux-gnueabihf)
set(PDW_CROSS_PROCESSOR armv7l)
set(PDW_CROSS_QEMU qemu-arm)
include(${CMAKE_CURRENT_LIST_DIR}/debian-cross.cmake)
