"""Every benchmark's first lines: the CPU it ran on and the kernel choice (models/cpu.py)."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.cpu import configure_cpu, cpu_profile, cpu_summary, isa_name  # noqa: E402,F401

configure_cpu()  # before any benchmark imports TensorFlow: the same choice training makes


def print_cpu() -> None:
    """Print the CPU model, ISA and kernel choice, and the load on the machine, on one line."""
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() \
        else "n/a"
    print(f"cpu: {cpu_summary()}; loadavg {load}", flush=True)
