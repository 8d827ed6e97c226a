"""The suite's trainers, forked warm (training/warm.py): one server per pytest worker.

Every `python -m training` process spends 4-6 CPU-seconds importing TensorFlow and Keras before
its first step, and the suite starts dozens of them on 2 cores. `run()` and `popen()` take the
same command as `subprocess.run` / `subprocess.Popen`. A command that is not
`[sys.executable, "-m", "training", ...]`, an environment whose TensorFlow settings read at
import differ from the server's, or an output the server cannot write to, goes to a real
subprocess, as do the tests of the command line's own start (they call subprocess themselves)
and the trainers the app starts.
"""

from __future__ import annotations

import os
import subprocess
import sys

from training.warm import Warm, WarmProcess  # noqa: F401  (WarmProcess: for isinstance checks)

_server: Warm | None = None


def server() -> Warm:
    global _server
    if _server is None:
        _server = Warm()
    return _server


def close() -> None:
    """At the worker's end (tests/conftest.py): the server goes, and its temporary outputs."""
    global _server
    if _server is not None:
        _server.close()
        _server = None


def _ours(cmd) -> bool:
    return [str(c) for c in cmd[:3]] == [sys.executable, "-m", "training"]


def _target(stream, default: str | None):
    """The file a forked trainer writes `stream` to, or False when only a real process can."""
    if stream in (None, subprocess.PIPE):
        return default
    if stream == subprocess.DEVNULL:
        return os.devnull
    if stream == subprocess.STDOUT:
        return "stdout"
    name = getattr(stream, "name", None)
    return name if isinstance(name, str) and os.path.isfile(name) else False


def popen(cmd, *, cwd=None, env=None, stdout=None, stderr=None, text=False, **kw):
    """`subprocess.Popen` for a trainer, forked warm when it can be: output to PIPE (read after it
    ends, or as far as it has written), to a file or, for stderr, to stdout."""
    s = server()
    out, err = _target(stdout, None), _target(stderr, None)
    if kw or False in (out, err) or not _ours(cmd) or not s.serves(env):
        return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=stdout, stderr=stderr, text=text, **kw)
    return s.popen(cmd, cwd=cwd, env=env, text=text, stdout=out, stderr=err)


def run(cmd, *, cwd=None, env=None, capture_output=False, text=False, timeout=None, check=False):
    """`subprocess.run` for a trainer, forked warm when it can be."""
    s = server()
    if not _ours(cmd) or not s.serves(env):
        return subprocess.run(
            cmd, cwd=cwd, env=env, capture_output=capture_output, text=text, timeout=timeout, check=check
        )
    p = s.popen(cmd, cwd=cwd, env=env, text=text)
    try:
        out, err = p.communicate(timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(30)
        raise
    if check and p.returncode:
        raise subprocess.CalledProcessError(p.returncode, cmd, out, err)
    return subprocess.CompletedProcess(cmd, p.returncode, out, err)
