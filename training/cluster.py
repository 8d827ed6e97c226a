"""Training past one process: TF_CONFIG's check, who writes the run folder, BatchNorm statistics.

With ``TF_CONFIG`` set, every worker runs ``python -m training`` with the same options and
MultiWorkerMirroredStrategy keeps their trainable weights identical (gradients are all-reduced).
Three things are this project's own:

- ``read_tf_config`` checks TF_CONFIG before TensorFlow starts its cluster, so a typo is a
  one-line error instead of a worker waiting for peers that never come.
- ``is_chief``: only the chief writes the run folder (task type "chief", or worker 0 when the
  cluster has no chief); the others train and write nothing. Keras saves without collectives,
  so no worker has to take part in the chief's saves.
- ``moving_stats_sync``: BatchNorm's moving mean/variance are not gradients; each replica
  updates its own copy from its own batches. Before anything is drawn, scored or saved they are
  replaced by their mean over all replicas (the cluster's statistics), on every replica alike.
"""

from __future__ import annotations

import json
import os
import signal
import threading

import numpy as np

from training.config import ConfigError

TF_CONFIG = "TF_CONFIG"
JOBS = ("chief", "worker")  # the task types MultiWorkerMirroredStrategy trains with
# Test hook: a path where each worker writes its final G/D variables (.npz). The two-worker
# test compares the workers with it, since a non-chief writes nothing anywhere else.
WEIGHTS_DUMP = "LATENT_EXPLORER_WEIGHTS_DUMP"
_EXAMPLE = '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}'


def read_tf_config(environ=os.environ) -> dict | None:
    """TF_CONFIG parsed and checked (None when unset or blank); ConfigError saying what is wrong."""
    text = environ.get(TF_CONFIG, "").strip()
    if not text:
        return None
    try:
        conf = json.loads(text)
    except ValueError as exc:
        raise _bad(f"is not valid JSON ({exc})") from None
    if not isinstance(conf, dict):
        raise _bad("is not a JSON object")
    cluster, task = conf.get("cluster"), conf.get("task")
    if not isinstance(cluster, dict) or not cluster:
        raise _bad('has no "cluster" object listing the workers')
    seen: set[str] = set()
    for job, addresses in cluster.items():
        if job not in JOBS:
            raise _bad(f'has a "{job}" job; only "chief" and "worker" tasks train here')
        if not isinstance(addresses, list) or not addresses:
            raise _bad(f'job "{job}" must be a non-empty list of "host:port" addresses')
        for address in addresses:
            if not _is_address(address):
                raise _bad(f'job "{job}" lists {address!r}, not a "host:port" address')
            if address in seen:
                raise _bad(f"lists {address} twice; every task needs its own port")
            seen.add(address)
    if len(cluster.get("chief", [])) > 1:
        raise _bad("lists more than one chief")
    if not isinstance(task, dict):
        raise _bad('has no "task" object saying which task this process is')
    kind, index = task.get("type"), task.get("index")
    if kind not in cluster:
        raise _bad(f"task type {kind!r} is not a job of its cluster ({', '.join(cluster)})")
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(cluster[kind]):
        raise _bad(f'task index {index!r} is not one of 0..{len(cluster[kind]) - 1} for job "{kind}"')
    return conf


class WorkerLost(RuntimeError):
    """Another worker of the cluster stopped answering (killed, crashed, its machine gone)."""


def as_worker_lost(strategy, exc: BaseException) -> BaseException:
    """``exc`` as a one-line WorkerLost when it is TensorFlow's word that a peer is gone (only
    with several workers); otherwise ``exc`` itself."""
    import tensorflow as tf

    lost = (tf.errors.UnavailableError, tf.errors.CancelledError, tf.errors.DeadlineExceededError)
    if getattr(getattr(strategy, "cluster_resolver", None), "task_type", None) is None:
        return exc
    if not isinstance(exc, lost):
        return exc
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    why = next((line for line in lines if "aborted" in line), lines[0] if lines else "")
    return WorkerLost(
        f"another worker of the cluster stopped answering ({exc.__class__.__name__}: {why[:200]}); "
        "whole epochs are kept: start every worker again with --resume"
    )


def _bad(why: str) -> ConfigError:
    return ConfigError(f"{TF_CONFIG} {why}; set it like {_EXAMPLE} (or unset it to train in one process)")


def _is_address(address) -> bool:
    if not isinstance(address, str):
        return False
    host, _, port = address.rpartition(":")
    return bool(host) and port.isdigit() and 0 < int(port) < 65536


def is_chief(strategy) -> bool:
    """Whether this process writes the run folder: always, unless its strategy's cluster
    resolver says it is a worker other than the chief (worker 0 when there is no chief)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    kind = getattr(resolver, "task_type", None)
    if not kind or kind == "chief":
        return True
    jobs = resolver.cluster_spec().as_dict()
    return kind == "worker" and resolver.task_id == 0 and "chief" not in jobs


def keep_sigterm() -> None:
    """Give SIGTERM back to this process's own handler after MultiWorkerMirroredStrategy started:
    TensorFlow's coordination service installs one of its own (for its preemption notices),
    which swallows it, so a worker could not be stopped by SIGTERM at all."""
    handler = signal.getsignal(signal.SIGTERM)
    if callable(handler) and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)


def agreed_stop(strategy, should_stop):
    """``should_stop`` for all workers at once: with several, true on every worker as soon as any
    one of them was asked to stop (SIGTERM, Ctrl-C), so all stop cleanly after the same step
    instead of the others waiting for the one that left. A collective: every worker asks at the
    same points (before each train call). One process: ``should_stop`` itself."""
    import tensorflow as tf

    if getattr(getattr(strategy, "cluster_resolver", None), "task_type", None) is None:
        return should_stop

    @tf.function
    def any_worker(flag):
        asked = strategy.run(tf.identity, args=(flag,))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, asked, axis=None) > 0

    return lambda: bool(any_worker(tf.constant(1.0 if should_stop() else 0.0)))


def moving_stats_sync(strategy, models):
    """A function that sets every float non-trainable variable of ``models`` (BatchNorm's moving
    mean and variance) to its mean over all replicas, or None with a single replica.

    Every replica must call it at the same point (it is a collective). Exact whenever it is
    called: each update is moving = m * moving + (1 - m) * batch statistic, linear in the stored
    value, so the mean of the replicas' averages is the average of their mean batch statistics.
    Training-mode passes use batch statistics, so the trained weights do not change with it.
    """
    import tensorflow as tf

    if strategy.num_replicas_in_sync <= 1:
        return None
    stats = [v for m in models if m is not None for v in m.non_trainable_variables if "float" in str(v.dtype)]
    if not stats:
        return None

    def average():
        ctx = tf.distribute.get_replica_context()
        means = ctx.all_reduce(tf.distribute.ReduceOp.MEAN, [tf.identity(v.value) for v in stats])
        for v, mean in zip(stats, means):
            v.assign(mean)  # aggregation "none": each replica sets its own copy, all to the same mean

    @tf.function
    def sync():
        strategy.run(average)

    return sync


def dump_weights_if_asked(generator, discriminator) -> None:
    """The test hook (WEIGHTS_DUMP): this process's G and D variables, by position, in one .npz."""
    path = os.environ.get(WEIGHTS_DUMP)
    if not path:
        return
    arrays = {}
    for prefix, model in (("g", generator), ("d", discriminator)):
        for i, v in enumerate(model.variables):
            arrays[f"{prefix}_{i:03d}"] = np.asarray(v.numpy())
        arrays[f"{prefix}_names"] = np.array([v.path for v in model.variables])
    np.savez(path, **arrays)
