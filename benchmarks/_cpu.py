"""Every benchmark's first lines: the CPU it ran on and the kernel choice (models/cpu.py)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.cpu import configure_cpu, cpu_profile, cpu_summary, isa_name  # noqa: E402,F401

configure_cpu()  # before any benchmark imports TensorFlow: the same choice training makes


def print_cpu() -> None:
    """Print the CPU model, ISA and kernel choice, and the load on the machine, on one line."""
    load = (
        " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "n/a"
    )
    print(f"cpu: {cpu_summary()}; loadavg {load}", flush=True)


def tensorflow_choice_env() -> tuple[dict, str] | None:
    """(environment, label) for a child process that runs with TensorFlow's own kernel choice,
    where it differs from this project's; None where they agree.

    TensorFlow turns oneDNN on by itself only with VNNI / bf16 / AMX (models/cpu.py
    tensorflow_default_onednn); the project turns it on for every x86 CPU with AVX2. Where they
    differ (AVX2 alone, AVX-512 without VNNI), the child gets the environment without the
    project's setting, so TensorFlow chooses. Under ONEDNN_MAX_CPU_ISA (a CPU approaching a
    smaller one) TensorFlow would still read the hardware's flags, so the child is told what it
    would choose on the capped CPU: TF_ENABLE_ONEDNN_OPTS=0 under an AVX2 cap, as issue 15 says."""
    import os

    from models.cpu import MARK, capped_flags, configure_cpu, read_cpuinfo, tensorflow_default_onednn

    if configure_cpu()["set_env"] != "1":
        return None  # the user's own setting, or TensorFlow's choice (not x86 + AVX2)
    hardware = read_cpuinfo()["flags"]
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA")
    usable = capped_flags(hardware, cap)
    if tensorflow_default_onednn(usable):
        return None  # TensorFlow would choose oneDNN itself: the same kernels
    env = {k: v for k, v in os.environ.items() if k not in ("TF_ENABLE_ONEDNN_OPTS", MARK)}
    if tensorflow_default_onednn(hardware):  # capped: it would read the hardware and say on
        env["TF_ENABLE_ONEDNN_OPTS"] = "0"
        return env, "onednn-off"
    return env, "tf-default"


def round_robin(configs: list[str], rounds: int):
    """(round, config) pairs, the starting config rotating every round so noise hits all alike."""
    for r in range(rounds):
        k = r % len(configs)
        for c in configs[k:] + configs[:k]:
            yield r, c


def run_child(script: str, argv: list[str], onednn: bool, isa: str = "") -> dict:
    """Run ``script --child argv`` with oneDNN on/off (chosen at TensorFlow's import, hence a
    process each; ONEDNN_MAX_CPU_ISA=isa if given); return the JSON of its ``RESULT `` line."""
    import json
    import os
    import subprocess

    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS="1" if onednn else "0")
    if isa:
        env["ONEDNN_MAX_CPU_ISA"] = isa
    out = subprocess.run(
        [sys.executable, script, "--child", *argv], env=env, capture_output=True, text=True, timeout=900
    )
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise SystemExit(
            f"{Path(script).name} child (oneDNN {'on' if onednn else 'off'}) failed:\n"
            f"{out.stdout[-1500:]}\n{out.stderr[-2000:]}"
        )
    return json.loads(line[7:])


def add_config_args(ap, configs: str = "off,on") -> None:
    """The options of the benchmarks that compare oneDNN off / on in child processes."""
    import argparse

    ap.add_argument("--configs", default=configs, help="comma-separated: off, on")
    ap.add_argument(
        "--isa",
        default="",
        help="ONEDNN_MAX_CPU_ISA for the children, e.g. AVX2 "
        "(to approach an AVX2-only CPU on an AVX-512 one)",
    )
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)


def parse_or_run_child(ap, child):
    """Parse the command line; in a child process run ``child(args)`` and return None, else print
    the CPU line and return the args (for the parent, which runs the children)."""
    add_config_args(ap)
    args = ap.parse_args()
    if args.child:
        child(args)
        return None
    print_cpu()
    return args
