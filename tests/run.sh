#!/usr/bin/env bash
# The one test command: installs missing Debian packages, configures CMake into build/,
# builds with every core, runs ctest. Extra arguments go to ctest (e.g. -R Ps).
#   --sanitize: the same suite under AddressSanitizer + UBSan (halting on the first error)
#   in build-asan/, without CUDA and benchmarks, at -O1 (ASan's recommended level: half
#   the compile time of -O2 under instrumentation); tests labelled asan_slow (too slow
#   under ASan to be worth CI's time) are left out.
#   --ci (.ci/run): a build to check, not to debug. Debug info is line tables only (-g1):
#   ASan's, UBSan's and glog's stack traces keep function, file and line, and full DWARF
#   cost about 40% of each compile. The CUDA backend is compiled for one architecture
#   (sm_90, the GPU machines') instead of two. -g1 changes no generated code, so what the
#   tests run is what a default build runs.
# Each phase's time is printed at the end (CI's budget is 30 minutes for both runs).
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir=build
cmake_args=()
ctest_args=()
opt=-O2
debug=-g
while [ $# -gt 0 ]; do
  case "$1" in
    --sanitize)
      build_dir=build-asan
      cmake_args+=(-DMTPS_SANITIZE=ON -DMTPS_CUDA=OFF -DMTPS_BUILD_BENCHMARKS=OFF)
      ctest_args+=(-LE asan_slow)
      opt=-O1
      # Child processes that tests start inherit these. Leak checks stay on (the default).
      export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
      export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
      shift ;;
    --ci)
      debug=-g1
      cmake_args+=(-DCMAKE_CUDA_ARCHITECTURES=90)
      shift ;;
    *) break ;;
  esac
done

# Always given (CMake's own are "-O2 -g -DNDEBUG"), so a build directory configured once
# with other flags gets these again.
cmake_args+=("-DCMAKE_C_FLAGS_RELWITHDEBINFO=$opt $debug -DNDEBUG"
             "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=$opt $debug -DNDEBUG")

bash launch/install-deps.sh
jobs=$(nproc)
start=$SECONDS
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo ${MTPS_CMAKE_ARGS:-} \
  "${cmake_args[@]}" >/dev/null
configured=$SECONDS
cmake --build "$build_dir" -j "$jobs"
built=$SECONDS
cd "$build_dir"
status=0
ctest --output-on-failure -j "$jobs" --timeout 300 "${ctest_args[@]}" "$@" || status=$?
echo "tests/run.sh ${build_dir}: configure $((configured - start)) s, build $((built - configured)) s," \
     "ctest $((SECONDS - built)) s"
exit $status
