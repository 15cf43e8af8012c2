#!/usr/bin/env bash
# The one test command: installs missing Debian packages, configures CMake into build/,
# builds with every core, runs ctest. Safe to run again; quiet when nothing is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake pkg-config capnproto libcapnp-dev libzmq3-dev cppzmq-dev
  libgoogle-glog-dev libgflags-dev libgtest-dev libgmock-dev libbenchmark-dev
  libboost-dev libboost-system-dev libopenblas-dev libyaml-cpp-dev python3)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "tests/run.sh: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo ${MTPS_CMAKE_ARGS:-} >/dev/null
cmake --build build -j "$jobs"
cd build
ctest --output-on-failure -j "$jobs" --timeout 600 "$@"
