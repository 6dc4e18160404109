#!/usr/bin/env python3
"""HelloBench for `lazyfs run`: time from starting the command to the output of `echo hello`.

    python3 hellobench/run_bench.py --lazyfs build/tools/lazyfs [--runs 5] [--drop-page-cache]

Compared setups, each the median of --runs runs:
  crun          `crun run` on a rootfs already unpacked by `umoci unpack` (the baseline: no image work);
  lazyfs cold   `lazyfs run` with an empty chunk cache and no mount of the image (mount, tree build,
                every chunk the start-up reads fetched from the image layout);
  lazyfs warm   the same with the cache filled by an earlier run, --keep-mount 0: a new mount each time
                (mount + merged tree from the cache);
  lazyfs kept   warm cache, the image mount lingering from the run before (--keep-mount): no resolve, no
                mount (skipped for a lazyfs without --keep-mount);
  lazyfs shared warm cache and another sandbox of the image running, so its lazy mount is reused.
Each line also gives the median time until the command exited (`total`: teardown included).

The image is Debian minbase (mmdebstrap) converted to eStargz, from tests/integration/debian_image.py.
With --drop-page-cache the kernel page cache is dropped before each cold run (and before the baseline),
so the image blobs are read from disk too. Needs root, crun, umoci, mmdebstrap.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import debian_image  # noqa: E402
import test_run  # noqa: E402  (prepare_cgroups)


def time_to_hello(cmd):
    """(seconds from spawning `cmd` to reading "hello" on its stdout, seconds until it exited)."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = proc.stdout.readline()
    elapsed = time.monotonic() - start
    out, err = proc.communicate(timeout=120)
    total = time.monotonic() - start
    if line != b"hello\n" or proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {proc.returncode}, stdout {line + out!r}, stderr {err.decode()}")
    return elapsed, total


def drop_page_cache():
    subprocess.run(["sync"], check=True)
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def crun_bundle(plain_layout, tag, workdir):
    """An unpacked bundle whose config runs `echo hello` the way lazyfs run does (no terminal, tini)."""
    bundle = os.path.join(workdir, "bundle")
    subprocess.run(["umoci", "unpack", "--image", f"{plain_layout}:{tag}", bundle], check=True,
                   capture_output=True, timeout=900)
    with open(os.path.join(bundle, "config.json")) as f:
        spec = json.load(f)
    spec["process"]["terminal"] = False
    spec["process"]["args"] = ["/dev/init", "--", "echo", "hello"]
    spec["mounts"].append({"destination": "/dev/init", "type": "bind", "source": "/usr/bin/tini-static",
                           "options": ["bind", "ro", "nosuid", "nodev"]})
    spec["process"].pop("rlimits", None)
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(spec, f)
    return bundle


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lazyfs", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--drop-page-cache", action="store_true")
    args = ap.parse_args()
    lazyfs = os.path.abspath(args.lazyfs)
    test_run.prepare_cgroups()

    plain, tag = debian_image.build_image("bench-minbase", [], {"Cmd": ["/bin/sh"]})
    estargz, _ = debian_image.build_image("bench-minbase", [], {"Cmd": ["/bin/sh"]}, lazyfs=lazyfs)
    ref = f"oci:{estargz}:{tag}"
    work = tempfile.mkdtemp(prefix="lazyfs-bench.")
    try:
        bundle = crun_bundle(plain, tag, work)
        log = os.path.join(work, "lazyfs.log")
        results = {"crun": [], "lazyfs cold": [], "lazyfs warm": [], "lazyfs kept": [], "lazyfs shared": []}
        help_text = subprocess.run([lazyfs, "run", "--help"], capture_output=True, text=True).stdout
        can_keep = "--keep-mount" in help_text

        crun_id = iter(range(1 << 30))

        def baseline():
            # Interleaved with the lazyfs runs, so both see the same machine load.
            if args.drop_page_cache:
                drop_page_cache()
            results["crun"].append(time_to_hello(["crun", "run", "--bundle", bundle,
                                                  f"lazyfs-bench-{os.getpid()}-{next(crun_id)}"]))

        def run_cmd(cache, keep=0):
            extra = ["--keep-mount", str(keep)] if can_keep else []
            return [lazyfs, "run", "--cache-dir", cache, "--log-file", log, *extra, ref, "--", "echo", "hello"]

        warm_cache = None
        for i in range(args.runs):
            baseline()
            cache = os.path.join(work, f"cold-cache-{i}")
            os.makedirs(cache)
            if args.drop_page_cache:
                drop_page_cache()
            results["lazyfs cold"].append(time_to_hello(run_cmd(cache)))
            warm_cache = warm_cache or cache
        for _ in range(args.runs):
            baseline()
            results["lazyfs warm"].append(time_to_hello(run_cmd(warm_cache)))

        if can_keep:
            time_to_hello(run_cmd(warm_cache, keep=600))  # mounts; the mount lingers
            for _ in range(args.runs):
                baseline()
                results["lazyfs kept"].append(time_to_hello(run_cmd(warm_cache, keep=600)))
            time_to_hello(run_cmd(warm_cache, keep=0))  # the last user with --keep-mount 0 unmounts
        holder = subprocess.Popen([*run_cmd(warm_cache)[:-2], "sh", "-c", "echo ready; read line"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        try:
            if holder.stdout.readline() != b"ready\n":
                raise RuntimeError("the sandbox holding the mount did not start")
            for _ in range(args.runs):
                baseline()
                results["lazyfs shared"].append(time_to_hello(run_cmd(warm_cache)))
        finally:
            holder.stdin.close()
            holder.wait(timeout=60)
            holder.stdout.close()

        base = statistics.median(t for t, _ in results["crun"])
        print(f"echo hello, Debian minbase ({args.runs} runs each, {len(results['crun'])} of crun; medians; page cache "
              f"{'dropped' if args.drop_page_cache else 'kept'}):")
        for name, pairs in results.items():
            if not pairs:
                continue
            times = [t for t, _ in pairs]
            med = statistics.median(times)
            total = statistics.median(t for _, t in pairs)
            print(f"  {name:14s} {med * 1000:8.1f} ms   x{med / base:5.2f} of crun   "
                  f"(min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f}; total {total * 1000:.1f} ms)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
