"""OpenBLAS's best kernels for the PyTorch side of a comparison with mtps.

Debian's numpy and PyTorch call OpenBLAS, whose 0.3.21 falls back to its SSE3 "Prescott"
kernels on CPUs it does not know (this project's machines). mtps's CPU backend switches to
the best ones (models/blas_core.h); this applies the same rule to a Python process, by
setting OPENBLAS_CORETYPE, which OpenBLAS reads when it loads: call use_best_kernels()
before importing numpy or torch.
"""
import os
import subprocess
import sys

_PROBE = ("import ctypes; lib = ctypes.CDLL('libopenblas.so.0'); "
          "lib.openblas_get_corename.restype = ctypes.c_char_p; "
          "print(lib.openblas_get_corename().decode())")


def _cpu_flags():
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


def best_core(flags):
    """OpenBLAS's best kernel set for CPU flags, or '' when its generic one is right."""
    if {"avx512f", "avx512bw", "avx512dq", "avx512vl"} <= flags:
        return "SkylakeX"
    if {"avx2", "fma"} <= flags:
        return "Haswell"
    return ""


def use_best_kernels():
    """Sets OPENBLAS_CORETYPE when OpenBLAS would fall back to Prescott on a better CPU;
    returns the kernel set this process will run (or '' when OpenBLAS is not there)."""
    if "OPENBLAS_CORETYPE" in os.environ:
        return os.environ["OPENBLAS_CORETYPE"]
    probe = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True)
    chosen = probe.stdout.strip()
    best = best_core(_cpu_flags())
    if chosen.lower() == "prescott" and best:
        os.environ["OPENBLAS_CORETYPE"] = best
        return best
    return chosen
