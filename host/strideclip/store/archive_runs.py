"""Where an archive's logs are analysed (strideclip.store.archive, docs/archive.md): here, one
after the other (one worker); on a local process pool (the standard library's); or on a Dask
distributed cluster. Each runs the same task, ``archive.analyse_log``, and yields its results as
they come; what is written from them is the same whichever ran them."""
from __future__ import annotations

import multiprocessing
import os
import signal
import uuid
from collections.abc import Callable, Iterator

from strideclip.errors import ArchiveError, needs_extra
from strideclip.store.archive import LogResult, LogTask, analyse_log

DASK = "Dask"  # what reanalyse --scheduler runs on
CONNECT_TIMEOUT_S = 30.0  # to reach the scheduler
WORKERS_TIMEOUT_S = 60.0  # for a first worker to join it
# imported once by the pool's fork server, so each worker starts with the analysis loaded
PRELOAD = ["strideclip.store.archive", "strideclip.session.replay"]


def cpu_count() -> int:
    """The CPUs this process may run on (a container's or a taskset's share, not the machine's)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def check_dask() -> None:
    """Before any work: Dask is installed, or what to install is said (loaded now: the run needs it anyway)."""
    needs_extra("distributed", "archive", DASK)


def run_tasks(tasks: list[LogTask], *, workers: int | None = None, scheduler: str | None = None,
              progress: Callable[[int, int], None] | None = None) -> Iterator[LogResult]:
    """Each task's result as it is done. ``scheduler``: on that Dask cluster; else on ``workers``
    processes (default: one per CPU), or here when that is 1 (``progress`` then follows each log)."""
    if not tasks:  # all done before: no pool to start, no cluster to reach
        return (r for r in ())
    if scheduler:
        return _on_dask(tasks, scheduler)
    workers = min(workers or cpu_count(), len(tasks))
    if workers <= 1:
        return (analyse_log(t, progress=progress) for t in tasks)
    return _on_pool(tasks, workers)


def _on_pool(tasks: list[LogTask], workers: int) -> Iterator[LogResult]:
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    methods = multiprocessing.get_all_start_methods()
    # not fork: the parent may run threads (the progress bar's); the fork server starts clean, once
    ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    if ctx.get_start_method() == "forkserver":
        ctx.set_forkserver_preload(PRELOAD)
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_ignore_ctrl_c)
    try:
        pending = {pool.submit(analyse_log, t): t for t in tasks}
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                task = pending.pop(future)
                try:
                    yield future.result()
                except BrokenProcessPool:
                    raise ArchiveError(f"a worker process died while analysing {task.file} (out of memory?): the "
                                       f"sessions done are kept, run the same command again to resume") from None
    finally:  # Ctrl-C: what is queued is dropped, the logs being analysed are finished (seconds)
        pool.shutdown(wait=True, cancel_futures=True)


def _ignore_ctrl_c() -> None:
    """In each worker: Ctrl-C is the parent's to handle (it stops the pool)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _on_dask(tasks: list[LogTask], address: str) -> Iterator[LogResult]:
    distributed = needs_extra("distributed", "archive", DASK)
    Client, as_completed = distributed.Client, distributed.as_completed
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as e:
        raise ArchiveError(f"cannot reach the Dask scheduler at {address}: {e}") from None
    try:
        try:
            client.wait_for_workers(1, timeout=WORKERS_TIMEOUT_S)
        except TimeoutError:
            raise ArchiveError(f"no Dask worker joined the scheduler at {address} in {WORKERS_TIMEOUT_S:.0f} s: "
                               f"start one with `dask worker {address}`") from None
        run_id = uuid.uuid4().hex[:8]
        futures = {client.submit(analyse_log, t, key=f"strideclip-reanalyse-{t.session}-{run_id}"): t for t in tasks}
        for future in as_completed(futures, loop=client.loop):
            task = futures[future]
            try:
                result = future.result()
            except Exception as e:  # the task never ran: a worker without strideclip, a worker lost
                raise ArchiveError(f"the Dask cluster at {address} could not analyse {task.file} "
                                   f"({type(e).__name__}: {e}); is strideclip installed on every worker? The "
                                   f"sessions done are kept: run the same command again to resume") from None
            future.release()
            yield result
    finally:
        client.close()
