"""Shared fixtures: one REAL short training run on the real digits, made once per session."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from tests import warm

ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT.parent / "shared" / "data" / "mnist"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# One thread per TensorFlow process in the suite (the pytest workers, and through the environment
# every app and trainer they start): two xdist workers, an app, a trainer and Chromium already
# share the 2 cores, and TensorFlow's own thread pools on top of that spin against each other.
# Measured on 2 AVX2 cores beside one other training process: 4 training tests 151 s and 143 s
# with TensorFlow's default pools, 98 s and 102 s with one thread. A test that compares numbers
# compares runs made in this same setting (a thread count can change float rounding).
# An environment that sets them already wins (setdefault).
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")

from models.cpu import configure_cpu  # noqa: E402  (before any test imports TensorFlow)

configure_cpu()  # the kernels the app and the CLI pick for this CPU, in-process tests too


# The order in which the two xdist workers take the test files (--dist loadfile with
# --no-loadscope-reorder, pyproject.toml): the longest first, so that the files left when one
# worker finishes are short and both end together (without it xdist orders the files by their
# number of tests, which says little about their time). The first two make the session's shared
# runs side by side ('tiny' for test_browser.py, 'cond' for test_cdcgan.py). Worker-seconds
# measured on a fresh clone, 2 AVX2 cores, in the comments; a file not listed goes in the middle.
FILE_ORDER = (
    "test_browser.py",  # 564 (its app, two trainings from the Train tab, the auth app)
    "test_cdcgan.py",  # 155
    "test_cdcgan_more.py",  # 151
    "test_training.py",  # 286
    "test_yourdigit.py",  # 219
    "test_links_browser.py",  # 146
    "test_explorer_logic.py",  # 131
    "test_web_training.py",  # 127
    "test_multiworker.py",  # 82
    "test_training_faults.py",  # 59
    "test_resume_safety.py",  # 55
    "test_neighbours.py",  # 55
    "test_folders.py",  # 48
    "test_directions.py",  # 42
    "test_augment.py",  # 36
    "test_corrupt_runs.py",  # 36
    "test_yourimage.py",  # 32
    "test_fashion.py",  # 26
    "test_cpu_choice.py",  # 21
    "test_quality.py",  # 9
    "test_state.py",  # 7
    "test_demo.py",  # 4
    "test_fast_ops.py",
    "test_compare_newest.py",
    "test_ui_pure.py",
    "test_packaging.py",
)


def pytest_sessionfinish(session, exitstatus):
    warm.close()  # this worker's warm trainer server (xdist workers end without atexit)


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(FILE_ORDER)}
    items.sort(key=lambda item: rank.get(item.path.name, len(FILE_ORDER) // 2))  # stable within a file


# How the shared run 'tiny' is trained (after --run-dir). A test that needs a trained run folder,
# or an uninterrupted run to compare a resumed one against, can use `trained_runs` (copy it
# first if it writes) and these arguments instead of training another run of its own: every
# training process costs several CPU-seconds of TensorFlow start-up and tracing.
TINY_ARGS = (
    "--data",
    str(MNIST),
    "--max-images",
    "512",
    "--epochs",
    "3",
    "--batch-size",
    "32",
    "--quality-samples",
    "500",
    "--quiet",
    "--no-tensorboard",
)


@pytest.fixture(scope="session")
def trained_runs(tmp_path_factory) -> Path:
    """A runs folder holding 'tiny': 3 epochs of the default preset on 512 real digits (seed 0),
    trained once per test session and shared by every module and every xdist worker (the first
    worker to need it trains it; the others wait on a lock). Read-only: see `runs_copy`."""
    return made_once(tmp_path_factory, "explorer-runs", _train_tiny)


def made_once(tmp_path_factory, name: str, make) -> Path:
    """The folder `name` made by `make(folder)` once per test session, shared by every xdist
    worker (the first to need it makes it; the others wait on a lock). Read-only for its users."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):  # not under xdist
        return make(tmp_path_factory.mktemp(name))
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp().parent  # the one folder all workers of a session share
    with FileLock(str(shared / f"{name}.lock")):
        folder = shared / name
        if not (shared / f"{name}.done").is_file():
            # only a folder this fixture made and never finished: nothing of a user's is in it
            shutil.rmtree(folder, ignore_errors=True)
            make(folder)
            (shared / f"{name}.done").write_text("done\n")
    return folder


# How the shared conditional run 'cond' is trained: one epoch of the cdcgan preset on 384 labelled
# real digits (seed 0). tests/test_cdcgan.py resumes a copy of it to epoch 2 (as it would have
# trained it); tests/test_cdcgan_more.py serves a copy of it as it is.
COND_ARGS = (
    "--preset",
    "cdcgan",
    "--epochs",
    "1",
    "--data",
    str(MNIST),
    "--max-images",
    "384",
    "--batch-size",
    "32",
    "--quality-samples",
    "200",
    "--quiet",
    "--no-tensorboard",
)


@pytest.fixture(scope="session")
def cond_run(tmp_path_factory) -> Path:
    """A runs folder holding 'cond' (COND_ARGS), trained once per session for every worker.
    Read-only: copy it (shutil.copytree, not hard links: a resume appends to its files)."""
    return made_once(tmp_path_factory, "cond-runs", lambda runs: _train(runs, "cond", COND_ARGS))


def _train_tiny(runs: Path) -> Path:
    return _train(runs, "tiny", TINY_ARGS)


def _train(runs: Path, name: str, args) -> Path:
    runs.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "training", "--run-dir", str(runs / name), *args]
    proc = warm.run(
        cmd,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return runs


@pytest.fixture
def runs_copy(trained_runs, tmp_path) -> Path:
    """A private copy of the trained runs folder, free to damage."""
    dst = tmp_path / "runs"
    shutil.copytree(trained_runs, dst)
    return dst
