"""Gradio's queue, woken by its events instead of polled: an idle explorer costs next to no CPU.

Gradio 6.31's queue (`gradio/queueing.py`) looks for work every 1 ms while it has none
(`Queue.start_processing` sleeps `sleep_when_free`, 0.001 s, and checks again), and its progress
loop (`start_progress_updates`) every 10 ms. An explorer nobody uses therefore wakes 1,100 times
a second and costs about 8 % of a core on this project's CPUs; with this, 0.7 %
(`benchmarks/idle_server.py`). A test suite with several apps open paid that 8 % for each.

`quiet(queue)` keeps Gradio's loops and changes only how those two wait when there is nothing
to do: the dispatch loop until an event is pushed or a job frees its slot (the only things that
can give it work), the progress loop until a job starts, each with a `SAFETY_S` timeout. Every
other wait, and every wait while there is work, is Gradio's own. The loops' `asyncio.sleep` is reached through
`gradio.queueing`'s `asyncio` global, replaced by a module that forwards everything to asyncio;
its `sleep` differs only inside the two loops of a queue passed to `quiet` (a context variable
set in their tasks says which), so other queues and code keep plain `asyncio.sleep`.
"""

from __future__ import annotations

import asyncio
import contextvars
import types

SAFETY_S = 0.25  # a wait with nothing to wake it still re-checks this often (a missed wake: late, not lost)
_ROLE: contextvars.ContextVar = contextvars.ContextVar("quiet_queue_role", default=None)


class Waker:
    """The wake-ups of one queue; `missed` counts timeouts that found work waiting (should be 0)."""

    def __init__(self, queue):
        self.queue = queue
        self.dispatch = asyncio.Event()  # an event was pushed or a job ended
        self.progress = asyncio.Event()  # a job started
        self.waits = 0
        self.missed = 0

    def _has_work(self) -> bool:
        """Would the dispatch loop start an event now? (the test of Gradio's `get_events`)"""
        q = self.queue
        return None in q.active_jobs and any(
            eq.queue and (eq.concurrency_limit is None or eq.current_concurrency < eq.concurrency_limit)
            for eq in q.event_queue_per_concurrency_id.values()
        )

    async def sleep(self, role: str, delay, result):
        q = self.queue
        if role == "dispatch" and delay == q.sleep_when_free:
            event = self.dispatch
        elif (
            role == "progress"
            and delay == q.progress_update_sleep_when_free
            and all(job is None for job in q.active_jobs)
        ):
            event = self.progress
        else:
            return await asyncio.sleep(delay, result)
        self.waits += 1
        if not event.is_set():
            try:
                await asyncio.wait_for(event.wait(), SAFETY_S)
            except TimeoutError:
                if role == "dispatch" and not event.is_set() and self._has_work():
                    self.missed += 1
        event.clear()
        return result


class _WakingSlots(list):
    """The queue's `active_jobs`: a slot set free (to None) wakes the dispatch loop at once (the
    job's task still has Gradio's bookkeeping to await before it returns)."""

    def __init__(self, slots, waker: Waker):
        super().__init__(slots)
        self.waker = waker

    def __setitem__(self, index, value):
        super().__setitem__(index, value)
        if value is None:
            self.waker.dispatch.set()


class _Asyncio(types.ModuleType):
    """asyncio for gradio.queueing: the same module, but `sleep` asks the loop's Waker first."""

    def __getattr__(self, name):
        return getattr(asyncio, name)

    @staticmethod
    async def sleep(delay, result=None):
        role = _ROLE.get()
        if role is None:
            return await asyncio.sleep(delay, result)
        waker, kind = role
        return await waker.sleep(kind, delay, result)


def quiet(queue) -> Waker:
    """Make `queue` (a Blocks' `_queue`, before the app starts) wait for its events; -> its Waker."""
    import gradio.queueing as gq

    if not isinstance(gq.asyncio, _Asyncio):
        gq.asyncio = _Asyncio("asyncio")
    waker = Waker(queue)
    push, process_events = queue.push, queue.process_events
    start_processing, start_progress_updates = queue.start_processing, queue.start_progress_updates

    async def pushed(*args, **kwargs):
        try:
            return await push(*args, **kwargs)
        finally:
            waker.dispatch.set()

    async def processed(*args, **kwargs):
        _ROLE.set(None)  # this task's own waits are Gradio's (its context was copied from the loop's)
        waker.progress.set()
        try:
            return await process_events(*args, **kwargs)
        finally:
            waker.dispatch.set()

    async def dispatching():
        _ROLE.set((waker, "dispatch"))  # this task's context only
        queue.active_jobs = _WakingSlots(queue.active_jobs, waker)  # as Queue.start made it
        return await start_processing()

    async def reporting():
        _ROLE.set((waker, "progress"))
        return await start_progress_updates()

    queue.push, queue.process_events = pushed, processed
    queue.start_processing, queue.start_progress_updates = dispatching, reporting
    queue.quiet_waker = waker
    return waker
