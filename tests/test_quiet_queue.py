"""The served app's Gradio queue waits for its events instead of polling every millisecond, and
still answers every request, in order of its limits, with progress (explorer/ui/quiet_queue.py)."""

from __future__ import annotations

import threading
import time

import gradio as gr
import gradio.queueing as gq
import pytest

from explorer.ui.quiet_queue import quiet
from tests.test_browser import free_port


def slow_double(x, progress=gr.Progress()):  # noqa: B008  (Gradio's way to ask for progress)
    progress(0.5, desc="half")
    time.sleep(0.4)  # longer than the safety re-check: it runs out while jobs run and others wait
    return 2 * float(x)


@pytest.fixture
def looks(monkeypatch):
    """How many times the dispatch loop of any queue looked for work (it calls len(queue))."""
    count = [0]
    original = gq.Queue.__len__

    def counted(self):
        count[0] += 1
        return original(self)

    monkeypatch.setattr(gq.Queue, "__len__", counted)
    return count


def served(make_quiet: bool):
    with gr.Blocks() as app:
        x, y = gr.Number(), gr.Number()
        gr.Button().click(slow_double, x, y, api_name="double", concurrency_limit=2)
    app.queue(default_concurrency_limit=2)
    waker = quiet(app._queue) if make_quiet else None
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    return app, f"http://127.0.0.1:{port}/", waker


@pytest.mark.parametrize("make_quiet", [True, False], ids=["quiet", "gradio"])
def test_an_idle_queue_looks_for_work_only_when_woken(looks, make_quiet):
    app, _, _ = served(make_quiet)
    try:
        time.sleep(1.0)  # started
        before = looks[0]
        time.sleep(2.0)
        idle = looks[0] - before
    finally:
        app.close()
    if make_quiet:
        # the safety re-check only: 4 a second, each a look and a check for work left waiting
        assert idle <= 2 * 2 / 0.25 + 8, idle
    else:
        assert idle > 200, idle  # Gradio's own 1 ms poll (about 2,000 in 2 s), as the control


def test_a_quiet_queue_answers_every_request_within_its_limit_and_misses_no_wake():
    from gradio_client import Client

    app, url, waker = served(True)
    try:
        client = Client(url, verbose=False, ssl_verify=False)
        time.sleep(0.6)  # idle: the loops are waiting for a wake
        first = client.submit(3, api_name="/double")
        progress = None
        deadline = time.monotonic() + 30
        while progress is None and not first.done() and time.monotonic() < deadline:
            progress = first.status().progress_data
            time.sleep(0.01)
        assert first.result(timeout=60) == 6.0
        time.sleep(0.6)
        start = time.monotonic()
        jobs = [client.submit(i, api_name="/double") for i in range(8)]
        results = [job.result(timeout=60) for job in jobs]
        took = time.monotonic() - start
        # a single call after an idle spell is woken at once, not by the safety timeout
        one = client.predict(21, api_name="/double")
    finally:
        app.close()
    assert progress and progress[0].progress == 0.5 and progress[0].desc == "half"  # reported
    assert results == [2.0 * i for i in range(8)] and one == 42.0
    assert took >= 4 * 0.4  # 8 calls of 0.4 s, at most 2 at a time
    assert waker.missed == 0, f"{waker.missed} waits ended by the safety timeout with work waiting"
    assert waker.waits > 0


def test_quiet_changes_nothing_for_other_code():
    """Outside the two loops of a quieted queue, gradio.queueing's asyncio.sleep is asyncio's."""
    import asyncio

    app, _, _ = served(True)
    app.close()
    seen = []

    async def main():
        t = time.monotonic()
        await gq.asyncio.sleep(0.05)
        seen.append(time.monotonic() - t)
        return await gq.asyncio.sleep(0, result="kept")

    out = threading.Thread(target=lambda: seen.append(asyncio.run(main())))
    out.start()
    out.join(10)
    assert seen[0] >= 0.05 and seen[1] == "kept"
    assert gq.asyncio.Event is asyncio.Event
