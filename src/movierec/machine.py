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
