"""Where independent tasks run: in this process, a process pool, or a Dask cluster.

:func:`resolve_executor` turns the user's ``executor`` argument into a
:class:`concurrent.futures.Executor` (or ``None`` for "in this process") and a ``close``
callable that releases what it created (an executor or client passed in by the user is left
open: its owner closes it).  The ensemble pipeline runs one member per task with it, and
``validation/analytical_bias.py`` one benchmark cell per task.

* ``None`` / ``"vectorised"`` (``"serial"`` is the same): no executor; the caller runs the tasks itself.
* ``"process"``: :class:`~concurrent.futures.ProcessPoolExecutor` with the ``spawn`` start method
  (safe with threaded BLAS and with CuPy, which cannot be forked after CUDA initialisation).
* ``"dask"``: ``dask.distributed.Client`` on a new ``LocalCluster`` (one thread per worker
  process), or on the scheduler at ``scheduler_address``; ``client.get_executor()`` is the
  ``concurrent.futures`` view.
* a scheduler address, ``"dask://HOST:PORT"`` (TCP) or a Dask address with its protocol
  (``"tcp://HOST:PORT"``, ``"tls://..."``, ``"ucx://..."``, ``"inproc://..."``, ``"ws://..."``,
  ``"wss://..."``): a client of that running scheduler, so that tasks run on its workers, on this
  machine or others.
* a ``distributed.Client`` (or anything with ``get_executor()``): its executor, left open.
* a Dask cluster object (anything with a ``scheduler_address``, e.g. ``LocalCluster``,
  ``SSHCluster``): a new client of it, closed afterwards; the cluster is left running.
* any ``concurrent.futures.Executor`` instance: used as given.

Dask needs ``pip install 'smile_ref[dask]'``; workers of a remote scheduler must be able to import
smile_ref (install the same version there).  Results do not depend on where a task ran: each task
is seeded by its own arguments.

Examples
--------
>>> ex, close = resolve_executor(None)
>>> ex is None
True
>>> ex, close = resolve_executor("process", n_workers=2)
>>> ex.submit(sum, [1, 2]).result()
3
>>> close()
"""
from __future__ import annotations

import multiprocessing
from concurrent.futures import Executor, ProcessPoolExecutor

__all__ = ["resolve_executor", "parse_scheduler_address", "DASK_PROTOCOLS"]

DASK_PROTOCOLS = ("tcp", "tls", "ucx", "inproc", "ws", "wss")


def _noop():
    return None


def _dask_client_cls():
    try:
        from dask.distributed import Client
    except ImportError:
        raise ImportError("a Dask executor needs dask.distributed: pip install 'smile_ref[dask]'") from None
    return Client


def parse_scheduler_address(executor) -> str | None:
    """The Dask scheduler address an ``executor`` string names (``dask://`` becomes ``tcp://``), or ``None``.

    Raises ``ValueError`` for a ``scheme://`` string of an unknown protocol or without a host.

    Examples
    --------
    >>> parse_scheduler_address("dask://127.0.0.1:8786")
    'tcp://127.0.0.1:8786'
    >>> parse_scheduler_address("process") is None
    True
    """
    if not isinstance(executor, str) or "://" not in executor:
        return None
    scheme, rest = executor.split("://", 1)
    if not rest:
        raise ValueError(f"executor {executor!r} names no scheduler host: expected e.g. 'dask://127.0.0.1:8786'")
    if scheme == "dask":
        return "tcp://" + rest
    if scheme in DASK_PROTOCOLS:
        return executor
    raise ValueError(f"executor {executor!r}: unknown scheduler protocol {scheme!r}; expected 'dask://HOST:PORT' "
                     f"or one of {', '.join(p + '://' for p in DASK_PROTOCOLS)}")


def _client_executor(address_or_cluster):
    client = _dask_client_cls()(address_or_cluster)
    return client.get_executor(), client.close


def resolve_executor(executor, n_workers: int | None = None, scheduler_address: str | None = None):
    """``(executor or None, close)`` for the ``executor`` argument of a parallel run.

    Parameters
    ----------
    executor : None, str, concurrent.futures.Executor, distributed.Client or Dask cluster
        ``None``, ``"vectorised"`` or ``"serial"`` (run in this process: ``None`` is returned),
        ``"process"``, ``"dask"``, a scheduler address (``"dask://HOST:PORT"``, ``"tcp://HOST:PORT"``,
        ...), a Dask client or cluster, or any executor (see the module docstring).
    n_workers : int, optional
        Pool size of a pool or ``LocalCluster`` created here (default: the CPU count for
        ``"process"``, 2 for ``"dask"``).
    scheduler_address : str, optional
        With ``executor="dask"``: connect to this scheduler instead of starting a ``LocalCluster``
        (the same as passing the address as ``executor``).

    Returns
    -------
    executor : concurrent.futures.Executor or None
    close : callable
        Releases what this call created (pool, client, local cluster); a no-op for objects the
        caller passed in.

    Raises
    ------
    ValueError
        For an unknown ``executor`` string or protocol, a bad ``n_workers``, or a
        ``scheduler_address`` without ``executor="dask"``.
    ImportError
        For a Dask executor without dask.distributed installed.
    """
    if n_workers is not None and (isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1):
        raise ValueError(f"n_workers must be a positive int, got {n_workers!r}")
    if scheduler_address is not None and executor != "dask":
        raise ValueError(f"scheduler_address needs executor='dask', got executor={executor!r}")
    if executor is None or executor in ("vectorised", "serial"):
        return None, _noop
    if isinstance(executor, Executor):
        return executor, _noop
    if executor == "process":
        ex = ProcessPoolExecutor(max_workers=n_workers, mp_context=multiprocessing.get_context("spawn"))
        return ex, (lambda: ex.shutdown(wait=True))
    if executor == "dask":
        if scheduler_address is not None:
            return _client_executor(parse_scheduler_address(scheduler_address) or scheduler_address)
        _dask_client_cls()
        from dask.distributed import Client, LocalCluster

        cluster = LocalCluster(n_workers=n_workers or 2, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)

        def close():
            client.close()
            cluster.close()

        return client.get_executor(), close
    address = parse_scheduler_address(executor)
    if address is not None:
        return _client_executor(address)
    if callable(getattr(executor, "get_executor", None)):  # a distributed.Client: the caller's to close
        return executor.get_executor(), _noop
    if isinstance(getattr(executor, "scheduler_address", None), str):  # a Dask cluster object
        return _client_executor(executor)
    raise ValueError(f"executor must be None, 'vectorised', 'serial', 'process', 'dask', a Dask scheduler address "
                     f"('dask://HOST:PORT'), a distributed.Client or cluster, or a concurrent.futures.Executor; "
                     f"got {executor!r}")
