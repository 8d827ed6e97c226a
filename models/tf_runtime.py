"""Import TensorFlow without its start-up chatter on stderr.

TensorFlow 2.21's C++ runtime prints, at import and before absl logging is set up, lines that
``TF_CPP_MIN_LOG_LEVEL`` does not silence ("All log messages before absl::InitializeLog()...",
"oneDNN custom operations are on...", "Could not find cuda drivers..."). They bury the one
line a user needs when something is wrong. ``import_tensorflow()`` imports TensorFlow with
file descriptor 2 pointed at a temporary file, then replays whatever was printed except
those known notices, so real warnings and import errors still reach the user.
Before the import it chooses the CPU kernels (``models.cpu.configure_cpu``).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

_NOISE = re.compile(
    r"All log messages before absl::InitializeLog\(\)"
    r"|oneDNN custom operations are on"
    r"|Could not find cuda drivers"
    r"|Unable to register cu(DNN|FFT|BLAS) factory"
    r"|computation placer already registered"
    r"|This TensorFlow binary is optimized to use available CPU instructions"
    r"|To enable the following instructions"
)


def import_tensorflow():
    """Return the ``tensorflow`` module, imported once with the start-up notices filtered."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    from models.cpu import configure_cpu

    configure_cpu()  # the kernels for this CPU (oneDNN on AVX2 too); must precede the import
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no real fd 2 (embedded interpreters)
        import tensorflow

        return tensorflow
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            import tensorflow
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            kept = [
                line
                for line in tmp.read().decode("utf-8", "replace").splitlines()
                if line.strip() and not _NOISE.search(line)
            ]
            if kept:
                print("\n".join(kept), file=sys.stderr, flush=True)
    return tensorflow
