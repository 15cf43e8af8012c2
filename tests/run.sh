#!/usr/bin/env bash
# The one test command: installs missing Debian packages, configures CMake into build/,
# builds with every core, runs ctest. Extra arguments go to ctest (e.g. -R Ps).
set -euo pipefail
cd "$(dirname "$0")/.."

bash launch/install-deps.sh
jobs=$(nproc)
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo ${MTPS_CMAKE_ARGS:-} >/dev/null
cmake --build build -j "$jobs"
cd build
ctest --output-on-failure -j "$jobs" --timeout 300 "$@"
