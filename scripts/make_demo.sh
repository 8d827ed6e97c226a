#!/usr/bin/env bash
# Re-make the bundled demo run (runs/demo): the default preset trained by this project's own
# `python -m training` on the 10,000 real digits in ../shared/data/mnist, then pruned to a few
# epoch snapshots (early, middle, final) so the committed folder stays small (< 25 MB).
# metrics.jsonl keeps every epoch's figures, so the Compare view's curves show the whole run.
# 20 epochs of the default recipe (scgan): about 10 minutes on 2 AVX2 cores. Three snapshots of
# it (G 3.1 MB + D 4.5 MB each) keep the folder under 25 MB.
# Usage: [DEMO_EPOCHS=N] bash scripts/make_demo.sh [KEEP_EPOCHS...]  (default: 1 3 and the last)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export TF_CPP_MIN_LOG_LEVEL=3
EPOCHS=${DEMO_EPOCHS:-20}
KEEP=("$@")
[ ${#KEEP[@]} -eq 0 ] && KEEP=(1 3 "$EPOCHS")

tmp=$(mktemp -d runs/.demo-XXXX)
trap 'rm -rf "$tmp"' EXIT
.venv/bin/python -m training --run-dir "$tmp/demo" --data ../shared/data/mnist \
  --epochs "$EPOCHS" --seed 0 --no-tensorboard

.venv/bin/python - "$tmp/demo" "$EPOCHS" "${KEEP[@]}" <<'EOF'
import json, shutil, sys
from pathlib import Path

run, epochs, keep = Path(sys.argv[1]), int(sys.argv[2]), sorted(map(int, sys.argv[3:]))
for d in (run / "epochs").iterdir():
    if int(d.name.split("-")[1]) not in keep:
        shutil.rmtree(d)
# neighbours.npz (2.7 MB) would take the demo past 25 MB: the explorer rebuilds the same index
# from the data recorded in run.json (README: Nearest real digits)
for extra in ("checkpoint", "progress.json", "run.lock", "neighbours.npz"):
    p = run / extra
    shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
info = json.loads((run / "run.json").read_text())
info["command"] = (f"python -m training --run-dir runs/demo --data ../shared/data/mnist "
                   f"--epochs {epochs} --seed 0 --no-tensorboard")
info["dataset"]["source"] = "../shared/data/mnist"
info["demo"] = {"made_by": "bash scripts/make_demo.sh",
                "kept_epochs": keep,
                "note": "epoch snapshots pruned to keep the repository small; metrics.jsonl "
                        "and each summary.json hold the figures of every epoch"}
(run / "run.json").write_text(json.dumps(info, indent=2) + "\n")
EOF
rm -rf runs/demo
mv "$tmp/demo" runs/demo
du -sh runs/demo
