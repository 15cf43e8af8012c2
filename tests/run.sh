#!/usr/bin/env bash
# The one test command: installs missing Debian packages, configures CMake into build/,
# builds with every core, runs ctest. Extra arguments go to ctest (e.g. -R Ps).
#   --sanitize (first argument): the same suite under AddressSanitizer + UBSan (halting on
#   the first error) in build-asan/, without CUDA and benchmarks; tests labelled asan_slow
#   (too slow under ASan to be worth CI's time) are left out.
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir=build
cmake_args=()
ctest_args=()
if [ "${1:-}" = "--sanitize" ]; then
  shift
  build_dir=build-asan
  cmake_args=(-DMTPS_SANITIZE=ON -DMTPS_CUDA=OFF -DMTPS_BUILD_BENCHMARKS=OFF)
  ctest_args=(-LE asan_slow)
  # Child processes that tests start inherit these. Leak checks stay on (the default).
  export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
  export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
fi

bash launch/install-deps.sh
jobs=$(nproc)
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo ${MTPS_CMAKE_ARGS:-} \
  "${cmake_args[@]}" >/dev/null
cmake --build "$build_dir" -j "$jobs"
cd "$build_dir"
ctest --output-on-failure -j "$jobs" --timeout 300 "${ctest_args[@]}" "$@"
