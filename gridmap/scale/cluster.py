"""Where dask runs: a local cluster of worker processes, or a running cluster named by its scheduler.

A local cluster is started for the block and closed after it; two worker processes of one thread each
suit a small machine (numpy, Arrow and GEOS release the interpreter lock, but processes also keep the
pandas parts of different partitions apart). ``scheduler="tcp://host:8786"`` connects to a real cluster
instead, whose workers need gridmap installed (``pip install 'gridmap[scale]'``), not a database.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from gridmap.scale import require

#: a local cluster's size on this kind of machine (2 cores): one single-threaded process per core
LOCAL_WORKERS = 2


@contextmanager
def connect(scheduler: str | None = None, *, workers: int = LOCAL_WORKERS, threads: int = 1,
            timeout: float = 10) -> Iterator:
    """A ``distributed.Client`` for the block.

    Parameters
    ----------
    scheduler
        Address of a running scheduler (``tcp://10.0.0.5:8786``); None starts a local cluster.
    workers, threads
        Worker processes of the local cluster, and threads in each (ignored with ``scheduler``).
    timeout
        Seconds to wait for the scheduler to answer.

    Yields
    ------
    distributed.Client
        Also the default for dask computations in the block.
    """
    distributed = require("distributed")
    if scheduler:
        try:
            client = distributed.Client(scheduler, timeout=timeout)
        except (OSError, TimeoutError) as error:
            raise ConnectionError(f"no dask scheduler answers at {scheduler}: {error}") from None
        with client:
            yield client
        return
    with distributed.LocalCluster(n_workers=workers, threads_per_worker=threads, processes=True,
                                  dashboard_address=None, silence_logs=logging.ERROR) as cluster, \
            distributed.Client(cluster) as client:
        yield client
