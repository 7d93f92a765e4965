# Cross-builds weft for 64-bit ARM Linux with Debian's gcc-aarch64-linux-gnu
# and the multiarch arm64 packages (liburing-dev:arm64, check:arm64); ctest
# runs the test programs under qemu's user-mode emulator. See README.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_ASM_COMPILER aarch64-linux-gnu-gcc)
# No -L /usr/aarch64-linux-gnu: that loader comes from libc6-arm64-cross,
# whose glibc build differs from the libc6:arm64 that liburing-dev:arm64
# pulls in, and the pair hangs in the first pthread_create. libc6:arm64
# puts its own loader at /lib/ld-linux-aarch64.so.1, where qemu finds it.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64-static)

# The multiarch packages install into /usr/{include,lib/aarch64-linux-gnu},
# where the cross compiler looks by itself; pkg-config must look there
# too, and not at the host's .pc files.
set(ENV{PKG_CONFIG_LIBDIR}
    /usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig)
set(ENV{PKG_CONFIG_SYSROOT_DIR} /)
