"""What a figure was measured on: CPU model, cores, load, Python. Every report and benchmark
states it, so numbers from different machines are never compared by accident."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine_info() -> dict[str, Any]:
    """CPU model, core count, platform, Python version and the load average at call time."""
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {"cpu": cpu_model(), "cpus": os.cpu_count(), "platform": platform.platform(),
            "processor": platform.machine(), "python": platform.python_version(),
            "load_average": load}


def available_memory() -> int | None:
    """Bytes of memory a new allocation can get now without swapping: ``MemAvailable`` of
    /proc/meminfo, lowered to what a cgroup (container) limit leaves; ``psutil`` elsewhere;
    ``None`` when nothing says."""
    avail: int | None = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                avail = int(line.split()[1]) * 1024
                break
    except (OSError, ValueError, IndexError):
        pass
    if avail is None:
        try:
            import psutil

            avail = int(psutil.virtual_memory().available)
        except Exception:  # no psutil, or a platform it cannot read
            return None
    try:  # cgroup v2: the container's limit minus what it already uses
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text())
            avail = min(avail, max(0, int(limit) - used))
    except (OSError, ValueError):
        pass
    return avail


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity where the OS has one (a container or
    ``taskset`` may allow fewer than the machine has), else ``os.cpu_count()``; at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS and Windows have no sched_getaffinity
        return max(1, os.cpu_count() or 1)
