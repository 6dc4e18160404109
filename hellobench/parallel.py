"""Runs a function on N threads at once and times them: the shape every concurrent-reader figure has."""

import threading
import time


def run_threads(target, n):
    """Calls target(i) for i in 0..n-1, each on its own thread, all started before any is joined; returns
    the wall time in seconds from the first start to the last join."""
    started = time.perf_counter()
    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started
