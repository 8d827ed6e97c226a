"""The CPU the program runs on, and the kernels chosen for it, before TensorFlow is imported.

TensorFlow 2.21 turns its oneDNN kernels on by itself only on x86 CPUs with VNNI, bf16 or AMX
(``tensorflow_default_onednn``); on an AVX2-only CPU without AVX_VNNI (many laptops and cloud
machines) and on AVX-512 without VNNI the convolutions then run on Eigen,
and the default step trains at a fraction of the speed (issue 15). ``configure_cpu()`` turns
oneDNN on for every x86 CPU with AVX2, unless the user set ``TF_ENABLE_ONEDNN_OPTS`` themself,
and records why; ``cpu_profile()`` reports the CPU's ISA and that choice for run.json and every
benchmark's output. bfloat16 is native only with ``avx512_bf16`` or ``amx_bf16``; elsewhere it is
emulated and slower than float32, so ``fast_precisions()`` / ``precision_note()`` say so.
Only the standard library here: it runs before TensorFlow is imported.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")
NATIVE_BF16 = ("avx512_bf16", "amx_bf16")
# ONEDNN_MAX_CPU_ISA (oneDNN's own setting) caps the instructions its kernels use: the flags above
# the cap do not count, so `ONEDNN_MAX_CPU_ISA=AVX2` on an AVX-512 CPU is profiled, and chosen for,
# as an AVX2-only CPU (issue 15's way to approach one). Each cap and what it takes away ("avx512"
# and "amx" stand for every flag of those families):
_CAPS = {
    ("SSE41", "AVX"): ("avx2", "fma", "avx512", "amx"),
    ("AVX2",): ("avx512", "amx", "avx_vnni"),
    ("AVX2_VNNI", "AVX2_VNNI_2"): ("avx512", "amx"),
    ("AVX512_CORE",): ("avx512_vnni", "avx512_bf16", "amx"),
    ("AVX512_CORE_VNNI",): ("avx512_bf16", "amx"),
    ("AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX10_1_512"): ("amx",),
}
BF16_PRECISIONS = ("mixed_bfloat16", "onednn_bfloat16")
# TensorFlow 2.21 on Linux turns oneDNN on by itself when the CPU has one of these (tensorflow/
# core/util/util.cc, IsMklEnabled): not on AVX2 alone, nor on AVX-512 without VNNI (Skylake-SP)
TF_ONEDNN_DEFAULT_FLAGS = ("avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16")

_choice: dict | None = None  # what configure_cpu decided, once per process
# set alongside TF_ENABLE_ONEDNN_OPTS, so child processes (which inherit both) know the value was
# configure_cpu's choice, not the user's
MARK = "LATENT_EXPLORER_ONEDNN_CHOICE"


def parse_cpuinfo(text: str) -> dict:
    """The model name and flag set of the first processor in a /proc/cpuinfo text."""
    model, flags = "", set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "cpu model") and not model:
            model = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    return {"model": model, "flags": flags}


def read_cpuinfo() -> dict:
    """This machine's CPU model and flags (/proc/cpuinfo; what platform knows elsewhere)."""
    try:
        return parse_cpuinfo(CPUINFO.read_text(errors="replace"))
    except OSError:  # not Linux, or /proc not mounted: fall back to what platform knows
        return {"model": platform.processor() or platform.machine(), "flags": set()}


def capped_flags(flags: set, cap: str | None) -> set:
    """The flags oneDNN may use under ONEDNN_MAX_CPU_ISA=cap (all of them for no cap, or for a cap
    that takes nothing away: ALL, DEFAULT, AMX levels, or a name this table does not know)."""
    cap = (cap or "").strip().upper()
    gone = next((g for names, g in _CAPS.items() if cap in names), ())
    families = tuple(g for g in gone if g in ("avx512", "amx"))
    return {f for f in flags if f not in gone and not (families and f.startswith(families))}


def isa_facts(flags: set) -> dict:
    facts = {f: f in flags for f in ISA_FLAGS}
    facts["native_bf16"] = any(f in flags for f in NATIVE_BF16)
    return facts


def tensorflow_default_onednn(flags: set) -> bool:
    """Whether TensorFlow, left to itself on Linux x86, runs oneDNN on a CPU with these flags."""
    return any(f in flags for f in TF_ONEDNN_DEFAULT_FLAGS)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def decide(flags: set, env: dict, machine: str = "") -> dict:
    """The kernel choice for a CPU's flags, given the environment (pure: changes nothing)."""
    machine = (machine or platform.machine()).lower()
    flags = capped_flags(flags, env.get("ONEDNN_MAX_CPU_ISA"))
    user = env.get("TF_ENABLE_ONEDNN_OPTS")
    if user is not None and user == env.get(MARK):
        user = None  # inherited from a parent process's configure_cpu: the same choice again
    if user is not None:
        on, why = user.strip() not in ("0", "false", "False", ""), "set by the user"
        set_here = None
    elif machine not in ("x86_64", "amd64") or "avx2" not in flags:
        on, why, set_here = None, "left to TensorFlow (not an x86 CPU with AVX2)", None
    elif "avx512f" in flags:
        on, why, set_here = (
            True,
            (
                "AVX-512: on, as TensorFlow itself chooses where the CPU also "
                "has AVX512_VNNI / BF16 / AMX; made explicit"
            ),
            "1",
        )
    elif tensorflow_default_onednn(flags):  # AVX_VNNI (Alder Lake and later)
        on, why, set_here = (True, "AVX2 with AVX_VNNI: on, as TensorFlow itself chooses; made explicit", "1")
    else:
        on, why, set_here = (
            True,
            (
                "AVX2 without AVX-512: TensorFlow would leave oneDNN off for "
                "convolutions; on is faster here (benchmarks/cpu_choice.py)"
            ),
            "1",
        )
    return {
        "onednn_opts": on,
        "onednn_reason": why,
        "set_env": set_here,
        "onednn_max_cpu_isa": env.get("ONEDNN_MAX_CPU_ISA"),
    }


def configure_cpu() -> dict:
    """Choose the CPU kernels; call before TensorFlow is imported. Idempotent; a user's explicit
    environment settings always win. Returns the choice (also in ``cpu_profile()``)."""
    global _choice
    if _choice is not None:
        return _choice
    info = read_cpuinfo()
    choice = decide(info["flags"], os.environ)
    if "tensorflow" in sys.modules:  # too late to choose: say what it is
        choice["onednn_reason"] = "TensorFlow was imported before configure_cpu(); left as it was"
        choice["onednn_opts"] = None  # cpu_profile()'s onednn_active says what TensorFlow runs
        choice["set_env"] = None
    elif choice["set_env"] is not None:
        os.environ["TF_ENABLE_ONEDNN_OPTS"] = os.environ[MARK] = choice["set_env"]
    _choice = choice
    return choice


def tf_onednn_enabled():
    """Whether the imported TensorFlow runs oneDNN kernels (None if not imported/unknown)."""
    if "tensorflow" not in sys.modules:
        return None
    try:
        from tensorflow.python.util import _pywrap_util_port

        return bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):
        return None


def cpu_profile(cpuinfo_text: str | None = None) -> dict:
    """The CPU (model, ISA flags that matter, cores) and the kernel choice, JSON-ready."""
    info = parse_cpuinfo(cpuinfo_text) if cpuinfo_text is not None else read_cpuinfo()
    choice = dict(_choice) if _choice is not None else decide(info["flags"], os.environ)
    choice.pop("set_env", None)
    usable = capped_flags(info["flags"], os.environ.get("ONEDNN_MAX_CPU_ISA"))
    prof = {
        "model": info["model"] or "unknown",
        "machine": platform.machine(),
        "cores": _cores(),
        **isa_facts(usable),  # what the kernels may use: the hardware's, or less under a cap
        **choice,
        "onednn_active": tf_onednn_enabled(),
    }
    if usable != info["flags"]:  # capped: say what the hardware has
        prof["hardware_isa"] = isa_name(isa_facts(info["flags"]))
    if "tensorflow" in sys.modules:
        tf = sys.modules["tensorflow"]
        try:
            prof["intra_op_threads"] = tf.config.threading.get_intra_op_parallelism_threads()
            prof["inter_op_threads"] = tf.config.threading.get_inter_op_parallelism_threads()
        except AttributeError:
            pass
    return prof


def isa_name(prof: dict) -> str:
    if prof.get("amx_bf16"):
        return "AMX"
    if prof.get("avx512f"):
        return "AVX-512" + (" + bf16" if prof.get("avx512_bf16") else "")
    return "AVX2" if prof.get("avx2") else "no AVX2"


def cpu_summary(prof: dict | None = None) -> str:
    """One line: model, cores, ISA, native bf16 or not, the oneDNN choice and why."""
    p = prof or cpu_profile()
    isa = p.get("onednn_max_cpu_isa")
    onednn = {True: "on", False: "off", None: "TensorFlow's default"}[p["onednn_opts"]]
    hw = f" (an {p['hardware_isa']} CPU capped by ONEDNN_MAX_CPU_ISA)" if p.get("hardware_isa") else ""
    return (
        f"{p['model']}, {p['cores']} cores, {isa_name(p)}{hw}"
        f"{'' if p['native_bf16'] else ', no native bf16'}; oneDNN {onednn} ({p['onednn_reason']})"
        + (f"; ONEDNN_MAX_CPU_ISA={isa}" if isa else "")
    )


def fast_precisions(prof: dict | None = None) -> list[str]:
    """The precisions that are not slower than float32 on this CPU: bf16 only where native."""
    p = prof or cpu_profile()
    return ["float32", *BF16_PRECISIONS] if p["native_bf16"] else ["float32"]


def precision_error(precision: str, prof: dict | None = None) -> str:
    """'' unless ``precision`` cannot run at all here, else why and what to do. One case: oneDNN on,
    capped below AVX-512 (ONEDNN_MAX_CPU_ISA=AVX2) on a CPU with native bf16. TensorFlow reads
    the CPU's bf16 itself and hands bf16 ops to oneDNN, which the cap forbids to run them: the
    process aborts ("could not create a primitive descriptor", measured on an AVX-512 + bf16 EPYC)."""
    p = prof or cpu_profile()
    capped_below = p.get("hardware_isa", "").startswith(("AVX-512 + bf16", "AMX")) and not p["avx512f"]
    if precision in BF16_PRECISIONS and capped_below and p["onednn_opts"] is not False:
        return (
            f"--precision {precision} cannot run with ONEDNN_MAX_CPU_ISA={p.get('onednn_max_cpu_isa')} "
            "on this CPU: TensorFlow sends bfloat16 work to oneDNN, which the cap keeps from running "
            "it (the process would abort). Use float32, or unset ONEDNN_MAX_CPU_ISA, or set "
            "TF_ENABLE_ONEDNN_OPTS=0"
        )
    return ""


def precision_note(precision: str, prof: dict | None = None) -> str:
    """'' when ``precision`` is a sensible choice on this CPU (or cannot run: precision_error
    says that), else a one-line warning."""
    p = prof or cpu_profile()
    if precision not in BF16_PRECISIONS or p["native_bf16"] or precision_error(precision, p):
        return ""
    if p.get("hardware_isa"):
        why = f"oneDNN is capped below bfloat16 (ONEDNN_MAX_CPU_ISA={p.get('onednn_max_cpu_isa')})"
    else:
        why = f"this CPU ({p['model']}) has no native bfloat16 (no avx512_bf16 / amx_bf16 flag)"
    return f"{precision}: {why}, so bfloat16 is emulated and slower than float32; use float32"
