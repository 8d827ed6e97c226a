"""The Compare view keeps the newest of a page's answers: a click on Compare, then an option changed
at once, must not end with the click's grid because its answer happened to finish last. The view's
handler over the bundled demo run's folder, with an engine whose first grid is held back until the
second has been answered (no TensorFlow: the order of the answers is under test, not the pictures)."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import numpy as np
import pytest

from explorer import latent
from explorer.registry import RunRegistry
from explorer.ui import compare
from explorer.ui.context import Ctx
from tests.conftest import ROOT


class _HeldEngine:
    """Draws blank grids; the first call waits until `release` is set."""

    def __init__(self, registry):
        self.registry = registry
        self.release = threading.Event()
        self.entered = threading.Event()
        self.calls = 0

    def compare(self, run, n_points=8, seed=0, final_d=False, epochs=None, skipped=None, label=None):
        self.calls += 1
        if self.calls == 1:
            self.entered.set()
            assert self.release.wait(60), "the second answer never came"
        eps = [e.epoch for e in self.registry.get(run).good_epochs()]
        n = int(n_points)
        return eps, np.zeros((len(eps), n, 28, 28), np.float32), np.full((len(eps), n), 0.5, np.float32)

    def compare_points(self, run, n_points, seed):
        return latent.compare_points(n_points, seed, self.registry.get(run).latent_dim)


@pytest.mark.parametrize("second", ["view", "auto"])
def test_an_older_compare_answer_never_replaces_a_newer_one(tmp_path, second):
    if not (ROOT / "runs" / "demo" / "run.json").is_file():
        pytest.skip("no bundled demo run in runs/demo")
    registry = RunRegistry([ROOT / "runs"])
    engine = _HeldEngine(registry)
    ctx = Ctx(registry, engine, None, tmp_path, tmp_path)
    _, view, auto = compare._handlers(ctx, 8)
    page = SimpleNamespace(session_hash="one-page")
    first: list = []
    clicked = threading.Thread(target=lambda: first.append(view("demo", 8, 0, False, request=page)))
    clicked.start()  # the Compare button: its grid is held back
    assert engine.entered.wait(60)
    newer = {"view": view, "auto": auto}[second]("demo", 4, 0, False, None, request=page)  # an option
    engine.release.set()
    clicked.join(60)
    assert not isinstance(newer[0], dict) and newer[0].width > 0  # the newer answer: a grid
    # the older answer, finished last, leaves the view as the newer one drew it
    assert len(first[0]) == 8 and all(isinstance(o, dict) and o.get("__type__") == "update" for o in first[0])
    # another page's answers are its own: not held back by this page's
    engine.calls = 1  # no more holding
    other = view("demo", 8, 0, False, request=SimpleNamespace(session_hash="another-page"))
    assert not isinstance(other[0], dict)
