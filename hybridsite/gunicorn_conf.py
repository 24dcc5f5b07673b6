"""gunicorn's settings hooks (``gunicorn -c python:hybridsite.gunicorn_conf``), for the metrics of
prometheus_client's multiprocess mode: a worker that exits is marked dead, so that its live gauges
(breaker states) stop counting. Its counters stay, so totals never go down while the master runs.

Read by gunicorn before Django starts: the directory is the one prometheus_client reads itself.
"""

import os


def child_exit(server, worker) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
