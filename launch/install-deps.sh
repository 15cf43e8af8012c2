#!/usr/bin/env bash
# Installs the Debian packages that building and testing mtps needs, only those missing.
# Quiet when nothing is missing; safe to run again. Used by tests/run.sh and launch/local.sh.
set -euo pipefail

packages=(build-essential cmake ninja-build pkg-config capnproto libcapnp-dev libzmq3-dev
  cppzmq-dev libgoogle-glog-dev libgflags-dev libgtest-dev libgmock-dev libbenchmark-dev
  libboost-dev libboost-system-dev libopenblas-dev libyaml-cpp-dev libxxhash-dev python3 python3-yaml)
# --fuzz: clang 19 and its libFuzzer runtime (libclang-rt-19-dev: compiler-rt's fuzzer
# and sanitizer libraries), for benchmarks/fuzz.sh only. Not bookworm's default clang 14:
# it lacks x86 _Float16 and __builtin_cpu_supports("f16c"), which ps/precision.cc uses.
# The tests' sanitizer build (tests/run.sh --sanitize) uses gcc and needs nothing more.
if [ "${1:-}" = "--fuzz" ]; then
  packages+=(clang-19 libclang-rt-19-dev)
fi
# The Kubernetes launch tests (tests/launch/k8s_*): python3-kubernetes carries the Kubernetes
# API schema (models generated from its OpenAPI spec) and python3-jsonschema validates the
# rendered manifests against it, offline; iproute2 makes the namespaces of the simulated cluster.
packages+=(python3-jsonschema python3-kubernetes iproute2)
# promtool (in Debian's prometheus package): tests/launch/promtool_test.sh lints /metrics with it.
packages+=(prometheus)
# launch/plot_run.py (local.sh's PNG of AUC and loss by epoch) and tests/launch/plot_run_test.sh.
packages+=(python3-matplotlib)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
