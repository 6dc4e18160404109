#!/usr/bin/env python3
"""Cold start of a real program from a lazy mount, with and without trace-driven prefetch.

    python3 hellobench/startup_bench.py --lazyfs build/tools/lazyfs --image oci:DIR:TAG \
        [--cmd "/usr/bin/python3 -c print(1)"] [--runs 3]

Each run uses a fresh, empty cache directory and a fresh mount, and times `lazyfs mount` + `chroot MNT CMD`
until CMD exits. First a recording run (`--trace`) makes the trace; then, per run: cold without prefetch,
cold with `--prefetch TRACE`. Prints the stats report of the recording run and a JSON summary
(median seconds, foreground misses, bytes fetched). Uses only the CLI and the mount; needs root.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time


def run(args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw)


def one_run(lazyfs, image, cmd, work, extra, trace_out=None):
    mnt, cache = os.path.join(work, "mnt"), os.path.join(work, "cache")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(mnt)
    os.makedirs(cache)
    mount = [lazyfs, "mount", "--cache-dir", cache, "--log-file", os.path.join(work, "log"), *extra]
    if trace_out:
        mount += ["--trace", trace_out]
    started = time.monotonic()
    run(mount + [image, mnt])
    run(["chroot", mnt, *cmd])
    elapsed = time.monotonic() - started
    stats = json.loads(run([lazyfs, "stats", "--json", mnt]).stdout)
    table = run([lazyfs, "stats", mnt]).stdout
    run([lazyfs, "umount", mnt])
    # The daemon flushes the trace after unmounting: wait for the file to stop growing via its pid.
    pid = stats["pid"]
    while os.path.exists(f"/proc/{pid}"):
        with open(f"/proc/{pid}/stat") as f:
            if f.read().split(") ", 1)[1][0] == "Z":
                break
        time.sleep(0.01)  # polling a process we do not own the exit status of
    return elapsed, stats, table


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lazyfs", required=True)
    ap.add_argument("--image", required=True)
    ap.add_argument("--cmd", default="/usr/bin/python3 -c print(1)")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    lazyfs, cmd = os.path.abspath(a.lazyfs), a.cmd.split()
    root = tempfile.mkdtemp(prefix="lazyfs-startup.")
    trace = os.path.join(root, "startup.trace")
    try:
        _, rec_stats, rec_table = one_run(lazyfs, a.image, cmd, os.path.join(root, "rec"), [], trace_out=trace)
        print(rec_table)
        results = {"cold": [], "prefetch": []}
        for _ in range(a.runs):
            results["cold"].append(one_run(lazyfs, a.image, cmd, os.path.join(root, "w"), []))
            results["prefetch"].append(one_run(lazyfs, a.image, cmd, os.path.join(root, "w"), ["--prefetch", trace]))
        summary = {"cmd": a.cmd, "image": a.image, "runs": a.runs,
                   "needed_bytes": rec_stats["bytes_needed"], "needed_percent": rec_stats["needed_percent"],
                   "files_bytes": rec_stats["files_bytes"], "trace_bytes": os.path.getsize(trace)}
        for name, rs in results.items():
            summary[name] = {"median_s": statistics.median(r[0] for r in rs),
                             "times_s": [round(r[0], 3) for r in rs],
                             "foreground_misses": [r[1]["chunk_misses"] for r in rs],
                             "bytes_fetched": [r[1]["bytes_fetched"] for r in rs]}
        print(json.dumps(summary, indent=2))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
