"""The bundled demo run's facts, read from its run.json (runs/demo), so that no test hard-codes how
many epochs the demo was trained for or which snapshots it keeps: re-making the demo with another
recipe (scripts/make_demo.sh) changes these numbers, not the tests."""

from __future__ import annotations

import json

from tests.conftest import ROOT

DEMO = ROOT / "runs" / "demo"
# a checkout without the demo still collects (the tests that copy it skip; test_demo.py fails)
_INFO = json.loads((DEMO / "run.json").read_text()) if (DEMO / "run.json").is_file() else {}
DEMO_FINAL: int = _INFO.get("epochs_done", 0)  # its last epoch, kept on disk
DEMO_KEPT: list[int] = list(_INFO.get("demo", {}).get("kept_epochs", []))  # kept snapshots, ascending
DEMO_KEPT_TEXT = ", ".join(map(str, DEMO_KEPT))  # "1, 3, 7, 15" as the explorer writes lists
assert not _INFO or (DEMO_KEPT == sorted(DEMO_KEPT) and DEMO_KEPT[-1] == DEMO_FINAL), _INFO["demo"]


def epoch_dir(epoch: int = DEMO_FINAL):
    """The demo's snapshot folder of `epoch` (default: its final epoch)."""
    return DEMO / "epochs" / f"epoch-{epoch:04d}"
