"""Where ensemble members run: in this process (vectorised), a process pool, or a Dask cluster.

:func:`resolve_executor` turns the user's ``executor`` argument into a
:class:`concurrent.futures.Executor` (or ``None`` for the vectorised default) and a ``close``
callable that releases what it created (an executor passed in by the user is left open: its
owner closes it).

* ``"process"``: :class:`~concurrent.futures.ProcessPoolExecutor` with the ``spawn`` start method
  (safe with threaded BLAS and with CuPy, which cannot be forked after CUDA initialisation).
* ``"dask"``: ``dask.distributed.Client`` on a new ``LocalCluster`` (one thread per worker
  process), or on the scheduler at ``scheduler_address`` (``"tcp://host:8786"``) so that members
  run on other machines; ``client.get_executor()`` is the ``concurrent.futures`` view.  Needs
  ``pip install 'smile_ref[dask]'``.  Workers must be able to import smile_ref.
* any ``concurrent.futures.Executor`` instance: used as given.
"""
from __future__ import annotations

import multiprocessing
from concurrent.futures import Executor, ProcessPoolExecutor

__all__ = ["resolve_executor"]


def _noop():
    return None


def resolve_executor(executor, n_workers: int | None = None, scheduler_address: str | None = None):
    """``(executor or None, close)`` for ``None``/``"vectorised"``, ``"process"``, ``"dask"`` or an Executor."""
    if n_workers is not None and (not isinstance(n_workers, int) or n_workers < 1):
        raise ValueError(f"n_workers must be a positive int, got {n_workers!r}")
    if executor is None or executor == "vectorised":
        if scheduler_address is not None:
            raise ValueError("scheduler_address needs executor='dask'")
        return None, _noop
    if isinstance(executor, Executor):
        return executor, _noop
    if executor == "process":
        ex = ProcessPoolExecutor(max_workers=n_workers, mp_context=multiprocessing.get_context("spawn"))
        return ex, (lambda: ex.shutdown(wait=True))
    if executor == "dask":
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError:
            raise ImportError("executor='dask' needs dask.distributed: pip install 'smile_ref[dask]'") from None
        if scheduler_address is not None:
            client = Client(scheduler_address)
            return client.get_executor(), client.close
        cluster = LocalCluster(n_workers=n_workers or 2, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)

        def close():
            client.close()
            cluster.close()

        return client.get_executor(), close
    raise ValueError(f"executor must be None, 'vectorised', 'process', 'dask' or a concurrent.futures.Executor, "
                     f"got {executor!r}")
