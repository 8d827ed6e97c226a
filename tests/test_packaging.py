"""Packaging as a newcomer meets it: one set of pins, console scripts that resolve, package data
that ships what the code loads."""

from __future__ import annotations

import importlib
import re
import tomllib

from tests.conftest import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def requirement_lines(name: str) -> list[str]:
    lines = [l.split("#")[0].strip() for l in (ROOT / name).read_text().splitlines()]
    return [l for l in lines if l and not l.startswith("-r ")]


def test_requirement_files_pin_exactly_what_pyproject_pins():
    project = PYPROJECT["project"]
    assert requirement_lines("requirements.txt") == project["dependencies"], (
        "requirements.txt drifted from pyproject.toml's [project] dependencies: copy the pins over"
    )
    assert requirement_lines("requirements-dev.txt") == project["optional-dependencies"]["dev"], (
        "requirements-dev.txt drifted from pyproject.toml's dev extra: copy the pins over"
    )
    assert "-r requirements.txt" in (ROOT / "requirements-dev.txt").read_text()
    for req in project["optional-dependencies"]["dev"]:
        assert re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][0-9A-Za-z.]*", req), f"dev tool not pinned: {req}"


def test_console_scripts_point_at_main_functions():
    scripts = PYPROJECT["project"]["scripts"]
    assert set(scripts) == {"latent-explorer", "latent-train"}
    for target in scripts.values():
        module, _, func = target.partition(":")
        assert callable(getattr(importlib.import_module(module), func)), target


def test_package_data_covers_every_file_the_evaluator_loads():
    globs = PYPROJECT["tool"]["setuptools"]["package-data"]["models"]
    shipped = {p for g in globs for p in (ROOT / "models").glob(g) if p.is_file()}
    assert shipped and shipped == {p for p in (ROOT / "models" / "evaluator").iterdir() if p.is_file()}
