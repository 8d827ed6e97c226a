"""The CPU kernel choice (models/cpu.py): real /proc/cpuinfo, fixture CPUs, and the environment
the choice leaves for TensorFlow, checked in child processes so this process's env stays clean."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from models import cpu

ROOT = Path(__file__).resolve().parents[1]

ZEN3_AVX2 = (
    "fpu vme de pse tsc msr pae sse sse2 ht syscall nx lm pni pclmulqdq ssse3 fma cx16 "
    "sse4_1 sse4_2 movbe popcnt aes xsave avx f16c rdrand hypervisor bmi1 avx2 smep bmi2 "
    "erms invpcid rdseed adx sha_ni vaes vpclmulqdq rdpid fsrm"
)
ZEN4_AVX512_BF16 = ZEN3_AVX2 + (
    " avx512f avx512dq avx512ifma avx512cd avx512bw avx512vl avx512_bf16 "
    "avx512vbmi avx512_vbmi2 gfni avx512_vnni avx512_bitalg avx512_vpopcntdq"
)
SKX_AVX512 = ZEN3_AVX2 + " avx512f avx512dq avx512cd avx512bw avx512vl"
SPR_AMX = ZEN4_AVX512_BF16 + " amx_bf16 amx_tile amx_int8"


def cpuinfo(model: str, flags: str) -> str:
    proc = f"processor\t: {{}}\nvendor_id\t: X\nmodel name\t: {model}\nflags\t\t: {flags}\n\n"
    return proc.format(0) + proc.format(1)


def test_real_cpuinfo_is_parsed_like_the_kernel_lists_it():
    text = Path("/proc/cpuinfo").read_text()
    flags = set(next(line for line in text.splitlines() if line.startswith("flags")).split(":")[1].split())
    flags = cpu.capped_flags(flags, os.environ.get("ONEDNN_MAX_CPU_ISA"))  # an AVX2 run approached
    prof = cpu.cpu_profile()
    assert prof["model"] and prof["model"] != "unknown"
    assert prof["avx2"] == ("avx2" in flags) and prof["avx512f"] == ("avx512f" in flags)
    assert prof["native_bf16"] == bool({"avx512_bf16", "amx_bf16"} & flags)
    assert prof["cores"] >= 1
    json.dumps(prof)  # goes into run.json as is


@pytest.mark.parametrize(
    "flags, isa, bf16",
    [
        (ZEN3_AVX2, "AVX2", False),
        (SKX_AVX512, "AVX-512", False),
        (ZEN4_AVX512_BF16, "AVX-512 + bf16", True),
        (SPR_AMX, "AMX", True),
    ],
    ids=["zen3-avx2", "skylake-avx512", "zen4-avx512-bf16", "sapphire-rapids-amx"],
)
def test_fixture_cpus(monkeypatch, flags, isa, bf16):
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)  # the hardware's own ISA
    prof = cpu.cpu_profile(cpuinfo("Some CPU", flags))
    assert prof["model"] == "Some CPU" and cpu.isa_name(prof) == isa and prof["native_bf16"] is bf16
    assert cpu.fast_precisions(prof) == (
        ["float32", "mixed_bfloat16", "onednn_bfloat16"] if bf16 else ["float32"]
    )
    note = cpu.precision_note("mixed_bfloat16", prof)
    assert ("no native bfloat16" in note and "slower than float32" in note) if not bf16 else note == ""
    assert cpu.precision_note("float32", prof) == ""
    assert ("no native bf16" in cpu.cpu_summary(prof)) is not bf16


def test_which_cpus_tensorflow_runs_onednn_on_by_itself():
    """TensorFlow's own rule (VNNI, bf16 or AMX), which the benchmarks' reference follows when it
    runs the keras.io guide as a user would: not on AVX2 alone nor on AVX-512 without VNNI."""
    got = {
        name: cpu.tensorflow_default_onednn(cpu.parse_cpuinfo(cpuinfo(name, flags))["flags"])
        for name, flags in [
            ("zen3", ZEN3_AVX2),
            ("skylake", SKX_AVX512),
            ("alder-lake", ZEN3_AVX2 + " avx_vnni"),
            ("zen4", ZEN4_AVX512_BF16),
            ("sapphire", SPR_AMX),
        ]
    }
    assert got == {"zen3": False, "skylake": False, "alder-lake": True, "zen4": True, "sapphire": True}
    alder = cpu.parse_cpuinfo(cpuinfo("alder-lake", ZEN3_AVX2 + " avx_vnni"))["flags"]
    assert cpu.decide(alder, {}, "x86_64")["onednn_reason"].startswith("AVX2 with AVX_VNNI")
    capped = cpu.decide(alder, {"ONEDNN_MAX_CPU_ISA": "AVX2"}, "x86_64")["onednn_reason"]
    assert capped.startswith("AVX2 without AVX-512")  # the AVX2 cap takes VNNI away too


def test_decide_turns_onednn_on_for_avx2_and_never_overrides_the_user():
    avx2 = cpu.parse_cpuinfo(cpuinfo("Zen 3", ZEN3_AVX2))["flags"]
    c = cpu.decide(avx2, {}, "x86_64")
    assert c["onednn_opts"] is True and c["set_env"] == "1" and "AVX2" in c["onednn_reason"]
    c = cpu.decide(avx2, {"TF_ENABLE_ONEDNN_OPTS": "0", "ONEDNN_MAX_CPU_ISA": "AVX2"}, "x86_64")
    assert c["onednn_opts"] is False and c["set_env"] is None and c["onednn_reason"] == "set by the user"
    assert c["onednn_max_cpu_isa"] == "AVX2"
    assert cpu.decide(avx2, {}, "aarch64")["set_env"] is None  # ARM: TensorFlow's own choice
    assert cpu.decide(set(), {}, "x86_64")["set_env"] is None  # no AVX2: TensorFlow's own choice
    inherited = {"TF_ENABLE_ONEDNN_OPTS": "1", cpu.MARK: "1"}  # a child of a configured process
    assert cpu.decide(avx2, inherited, "x86_64")["onednn_reason"].startswith("AVX2")
    inherited["TF_ENABLE_ONEDNN_OPTS"] = "0"  # ... whose user then changed it
    assert cpu.decide(avx2, inherited, "x86_64")["onednn_reason"] == "set by the user"


@pytest.mark.parametrize(
    "cap, isa, bf16",
    [
        ("AVX2", "AVX2", False),
        ("avx2_vnni", "AVX2", False),
        ("AVX512_CORE", "AVX-512", False),
        ("AVX512_CORE_BF16", "AVX-512 + bf16", True),
        ("AVX10_1_512", "AVX-512 + bf16", True),
        ("ALL", "AMX", True),
        ("SOMETHING_NEW", "AMX", True),
    ],
)
def test_onednn_max_cpu_isa_caps_what_counts(monkeypatch, cap, isa, bf16):
    """ONEDNN_MAX_CPU_ISA=AVX2 on an AMX / AVX-512 CPU is profiled and chosen for as AVX2-only
    (issue 15's way to approach such a CPU): bf16 is not offered as faster, oneDNN is turned on
    for the AVX2 reason, and the summary names the hardware too."""
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap)
    prof = cpu.cpu_profile(cpuinfo("Sapphire", SPR_AMX))
    assert cpu.isa_name(prof) == isa and prof["native_bf16"] is bf16
    assert cpu.fast_precisions(prof) == (["float32", *cpu.BF16_PRECISIONS] if bf16 else ["float32"])
    assert ("hardware_isa" in prof) is (isa != "AMX")
    if isa != "AMX":
        assert prof["hardware_isa"] == "AMX" and "an AMX CPU capped by ONEDNN_MAX_CPU_ISA" in cpu.cpu_summary(
            prof
        )
    flags = cpu.parse_cpuinfo(cpuinfo("Sapphire", SPR_AMX))["flags"]
    reason = cpu.decide(flags, {"ONEDNN_MAX_CPU_ISA": cap}, "x86_64")["onednn_reason"]
    assert reason.startswith("AVX2 without AVX-512") is (isa == "AVX2")
    assert cpu.capped_flags(flags, "SSE41") & {"avx2", "fma", "avx512f", "amx_tile"} == set()
    assert cpu.decide(flags, {"ONEDNN_MAX_CPU_ISA": "SSE41"}, "x86_64")["set_env"] is None


CHILD = """
import json, os, sys
sys.path.insert(0, {root!r})
from models import cpu
cpu.CPUINFO = __import__("pathlib").Path({info!r})
first = cpu.configure_cpu()
os.environ["TF_ENABLE_ONEDNN_OPTS"] = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "")  # a later change
second = cpu.configure_cpu()
out = {{"first": first, "same": first is second, "env": os.environ.get("TF_ENABLE_ONEDNN_OPTS")}}
if {import_tf}:
    from models.tf_runtime import import_tensorflow
    import_tensorflow()
    out["profile"] = cpu.cpu_profile()
print("OUT " + json.dumps(out))
"""


def run_child(tmp_path, flags: str, env: dict, import_tf: bool = False) -> dict:
    info = tmp_path / "cpuinfo"
    info.write_text(cpuinfo("Fixture CPU", flags))
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in ("TF_ENABLE_ONEDNN_OPTS", "ONEDNN_MAX_CPU_ISA", cpu.MARK)
    }
    code = CHILD.format(root=str(ROOT), info=str(info), import_tf=import_tf)
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**clean, "TF_CPP_MIN_LOG_LEVEL": "3", **env},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(next(line[4:] for line in proc.stdout.splitlines() if line.startswith("OUT ")))


def test_configure_cpu_sets_onednn_on_avx2_once(tmp_path):
    out = run_child(tmp_path, ZEN3_AVX2, {})
    assert out["first"]["set_env"] == "1" and out["env"] == "1" and out["same"]


@pytest.mark.parametrize("value", ["0", "1"])
def test_configure_cpu_respects_the_users_setting(tmp_path, value):
    out = run_child(tmp_path, ZEN3_AVX2, {"TF_ENABLE_ONEDNN_OPTS": value, "ONEDNN_MAX_CPU_ISA": "AVX2"})
    assert out["env"] == value and out["first"]["onednn_reason"] == "set by the user"
    assert out["first"]["onednn_opts"] is (value == "1") and out["first"]["onednn_max_cpu_isa"] == "AVX2"


@pytest.mark.skipif(
    "avx2" not in cpu.parse_cpuinfo(Path("/proc/cpuinfo").read_text())["flags"],
    reason="needs an x86 CPU with AVX2",
)
def test_tensorflow_runs_onednn_kernels_after_import_tensorflow_on_avx2(tmp_path):
    prof = run_child(tmp_path, ZEN3_AVX2, {}, import_tf=True)["profile"]
    assert prof["onednn_active"] is True and prof["onednn_opts"] is True
    assert prof["model"] == "Fixture CPU" and not prof["native_bf16"]


def test_configure_cpu_after_tensorflow_changes_nothing_and_says_so(tmp_path):
    code = (
        f"import json, os, sys, types; sys.path.insert(0, {str(ROOT)!r}); sys.modules['tensorflow'] = "
        "types.ModuleType('tensorflow'); from models import cpu; c = cpu.configure_cpu(); "
        "print('OUT ' + json.dumps([c, os.environ.get('TF_ENABLE_ONEDNN_OPTS')]))"
    )
    clean = {k: v for k, v in os.environ.items() if k not in ("TF_ENABLE_ONEDNN_OPTS", cpu.MARK)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=clean)
    choice, env = json.loads(proc.stdout.split("OUT ", 1)[1])
    assert env is None and choice["onednn_opts"] is None and "imported before" in choice["onednn_reason"]


def test_bf16_under_an_avx2_cap_on_a_bf16_cpu_is_refused_with_what_to_do(tmp_path, monkeypatch):
    """ONEDNN_MAX_CPU_ISA=AVX2 on an avx512_bf16 CPU with oneDNN on: TensorFlow would hand bf16
    ops to oneDNN and abort (seen on this project's AVX-512 EPYC). The option check, the CLI's
    and the Train tab's, refuses it instead; float32, no cap, or oneDNN off are fine."""
    from explorer.registry import ExplorerError
    from explorer.trainer import new_run_args
    from training.config import PRECISIONS, ConfigError, TrainConfig

    info = tmp_path / "cpuinfo"
    info.write_text(cpuinfo("Zen 4", ZEN4_AVX512_BF16))
    monkeypatch.setattr(cpu, "CPUINFO", info)
    monkeypatch.setattr(cpu, "_choice", None)
    for k in ("TF_ENABLE_ONEDNN_OPTS", cpu.MARK):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    for precision in cpu.BF16_PRECISIONS:
        why = cpu.precision_error(precision)
        assert "cannot run with ONEDNN_MAX_CPU_ISA=AVX2" in why and "Use float32" in why
        assert cpu.precision_note(precision) == ""  # the error says it all
        with pytest.raises(ConfigError, match="cannot run with ONEDNN_MAX_CPU_ISA=AVX2"):
            TrainConfig(run_dir=str(tmp_path / "r"), precision=precision).resolved()
        with pytest.raises(ExplorerError, match="^Precision: .*cannot run"):
            new_run_args(tmp_path / "r", "scgan", 1, 64, 64, "", precision, ["scgan"], PRECISIONS)
        assert not (tmp_path / "r").exists()
    assert cpu.precision_error("float32") == ""
    TrainConfig(run_dir=str(tmp_path / "r"), precision="float32").resolved()
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE")  # oneDNN runs bf16 there, slowly
    assert cpu.precision_error("mixed_bfloat16") == ""
    assert "oneDNN is capped below bfloat16" in cpu.precision_note("mixed_bfloat16")
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")  # the user's: Eigen runs bf16 (slowly)
    assert cpu.precision_error("mixed_bfloat16") == ""


@pytest.mark.skipif(
    not cpu.isa_facts(cpu.parse_cpuinfo(Path("/proc/cpuinfo").read_text())["flags"])["native_bf16"],
    reason="the abort needs a CPU with native bf16",
)
def test_the_cli_refuses_bf16_under_an_avx2_cap_instead_of_aborting(tmp_path):
    clean = {k: v for k, v in os.environ.items() if k not in ("TF_ENABLE_ONEDNN_OPTS", cpu.MARK)}
    run = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "training", "--quiet", "--no-tensorboard", "--run-dir", str(run)]
        + ["--data", str(ROOT.parent / "shared" / "data" / "mnist"), "--max-images", "64"]
        + ["--epochs", "1", "--precision", "onednn_bfloat16"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**clean, "TF_CPP_MIN_LOG_LEVEL": "3", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "error: --precision onednn_bfloat16 cannot run with ONEDNN_MAX_CPU_ISA=AVX2" in proc.stderr
    assert not run.exists()  # refused before anything was written
