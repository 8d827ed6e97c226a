"""The project's size limits, checked: no module over 400 lines and no function over 80 lines
in app.py, explorer/, training/ and models/ (tests and benchmarks are exempt).
Usage: python scripts/check_sizes.py  (exit 1, listing each excess, when a limit is broken)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_MODULE, MAX_FUNCTION = 400, 80


def source_files() -> list[Path]:
    files = [ROOT / "app.py"]
    for package in ("explorer", "training", "models"):
        files += sorted((ROOT / package).rglob("*.py"))
    return [f for f in files if f.is_file()]


def excesses(path: Path) -> list[str]:
    text = path.read_text()
    rel = path.relative_to(ROOT)
    found = []
    lines = len(text.splitlines())
    if lines > MAX_MODULE:
        found.append(f"{rel}: {lines} lines (limit {MAX_MODULE}): split it by responsibility")
    for node in ast.walk(ast.parse(text, str(rel))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            if length > MAX_FUNCTION:
                found.append(
                    f"{rel}:{node.lineno}: function {node.name} is {length} lines "
                    f"(limit {MAX_FUNCTION}): split it into named steps"
                )
    return found


def main() -> int:
    found = [e for f in source_files() for e in excesses(f)]
    for e in found:
        print(e, file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
