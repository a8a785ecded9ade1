"""What a figure was measured on: the CPU's name, its cores, and the versions that matter.

Every benchmark, `bench speed` and every training segment names the machine with these
two functions, so a number is never quoted without the hardware that produced it.
"""
from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo ("Intel(R) Xeon(R) Processor"), or what `platform` knows elsewhere."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_summary() -> dict:
    """CPU, core count, OS, Python and NumPy versions: the context every measured figure needs."""
    import numpy

    return {
        "cpu": cpu_name(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
    }


def code_version() -> str:
    """The commit this code was run from ("6d1b2b5", "+ local changes" if the checkout is
    dirty), or the package version when it is not a git checkout."""
    import subprocess
    from importlib.metadata import PackageNotFoundError, version

    here = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "-C", str(here), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
        return commit + (" + local changes" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        try:
            return "trie-vs-transformer " + version("trie-vs-transformer")
        except PackageNotFoundError:
            return "unknown"
