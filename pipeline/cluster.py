"""Where stages run: a local Dask cluster by default, an existing dask.distributed scheduler
(``--scheduler tcp://HOST:PORT`` or ``NNCAP_SCHEDULER``), or ``sync`` (in-process, for debugging)."""

from __future__ import annotations

import logging
import os
import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pipeline.errors import USER_ERRORS, NncapError

SCHEDULER_ENV = "NNCAP_SCHEDULER"


def scheduler_address(scheduler: str | None) -> str:
    """The effective scheduler: the argument, else ``$NNCAP_SCHEDULER``, else ``local``."""
    return scheduler or os.environ.get(SCHEDULER_ENV) or "local"


@contextmanager
def dask_client(scheduler: str | None = None, n_workers: int | None = None) -> Iterator[Any]:
    """Yield a ``dask.distributed.Client`` (or ``None`` for ``sync``). ``local`` starts a cluster of
    one single-threaded worker process per core (at most ``n_workers``) and stops it afterwards."""
    address = scheduler_address(scheduler)
    if address == "sync":
        yield None
        return
    import dask
    from dask.distributed import Client, LocalCluster

    if address == "local":
        workers = max(1, min(os.cpu_count() or 1, n_workers or os.cpu_count() or 1))
        # dashboard on a free port: a second nncap run must not collide with the first on :8787
        with dask.config.set({_SPAWN_ENV: _worker_environ()}), LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
            yield client
        return
    if "://" not in address:
        raise NncapError(f"scheduler must be 'local', 'sync' or an address like tcp://HOST:PORT, not {address!r}")
    try:
        client = Client(address, timeout="10s")
    except OSError as e:
        raise NncapError(f"cannot reach Dask scheduler at {address}: {e}") from None
    with client:
        yield client


_SPAWN_ENV = "distributed.nanny.pre-spawn-environ"


def _worker_environ() -> dict[str, Any]:
    """Dask's worker environment without ``MALLOC_TRIM_THRESHOLD_``: setting it switches off glibc's
    dynamic mmap threshold, so every large torch temporary is mmapped and page-faulted afresh
    (measured: 15 s of system time and 2.5x the wall time on a low-state resilience sweep)."""
    import dask

    return {k: v for k, v in dask.config.get(_SPAWN_ENV).items() if k != "MALLOC_TRIM_THRESHOLD_"}


def run_tasks(client: Any, fn: Callable[..., Any], items: Sequence[Any], *, label: str,
              retries: int = 2, show_progress: bool | None = None) -> list[tuple[Any, Any, BaseException | None]]:
    """Run ``fn(item)`` for every item as Dask tasks with a progress bar on stderr.

    Returns ``(item, result, error)`` per item in input order; one failing item does not stop the
    others. User errors (bad input) come back as values and are not retried; any other failure,
    a lost worker included, is retried ``retries`` times."""
    show = sys.stderr.isatty() if show_progress is None else show_progress
    results: list[Any] = [None] * len(items)
    errors: list[BaseException | None] = [None] * len(items)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), disable=not show, transient=False) as progress:
        bar = progress.add_task(label, total=len(items))
        if client is None:
            for i, item in enumerate(items):
                try:
                    results[i] = fn(item)
                except USER_ERRORS as e:  # reported per item by the caller; bugs propagate
                    errors[i] = e
                progress.advance(bar)
        else:
            from dask.distributed import as_completed

            futures = client.map(_Guarded(fn), list(items), pure=False, retries=retries)
            index = {f.key: i for i, f in enumerate(futures)}
            for future in as_completed(futures):
                i = index[future.key]
                try:
                    ok, value = future.result()
                    if ok:
                        results[i] = value
                    else:
                        errors[i] = value
                except Exception as e:  # reported per item by the caller
                    errors[i] = e
                progress.advance(bar)
    return [(items[i], results[i], errors[i]) for i in range(len(items))]


class _Guarded:
    """Wrap a task so user errors return as ``(False, error)`` instead of triggering Dask retries."""

    def __init__(self, fn: Callable[..., Any]):
        self.fn = fn

    def __call__(self, item: Any) -> tuple[bool, Any]:
        try:
            return True, self.fn(item)
        except USER_ERRORS as e:
            return False, e
