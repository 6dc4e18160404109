#!/usr/bin/env python3
"""The `lazyfs` front end (tools/lazyfs.cc): what it loads, and that it hands commands to lazyfs-core.

    python3 tests/tools/test_front_end.py --lazyfs build/tools/lazyfs

A warm `lazyfs run` is as fast as its process start, so the front end must not load the registry
client's, libarchive's or FUSE's libraries; everything but a run on a live mount goes to lazyfs-core
(exec, same pid). The run on a live mount itself is covered by tests/integration/test_run.py.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

LAZYFS = None


def run(*args, **kw):
    return subprocess.run([LAZYFS, *args], capture_output=True, text=True, timeout=60, **kw)


class FrontEndTest(unittest.TestCase):
    def test_loads_no_heavy_library(self):
        ldd = subprocess.run(["ldd", LAZYFS], capture_output=True, text=True, check=True).stdout
        loaded = {line.split()[0] for line in ldd.splitlines() if line.strip()}
        self.assertIn("libstdc++.so.6", loaded)  # the parse worked
        for lib in ("libcurl", "libarchive", "libfuse3", "libcrypto", "liblmdb", "libssl", "libz."):
            self.assertFalse([l for l in loaded if l.startswith(lib)], f"{lib} loaded: {sorted(loaded)}")
        core = os.path.join(os.path.dirname(LAZYFS), "lazyfs-core")
        ldd = subprocess.run(["ldd", core], capture_output=True, text=True, check=True).stdout
        self.assertIn("libcurl", ldd)

    def test_other_commands_are_lazyfs_core(self):
        r = run("--version")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), "lazyfs 0.1.0")
        r = run("--log-level", "warn", "--help")
        self.assertEqual(r.returncode, 0, r.stderr)
        for sub in ("mount", "stats", "trace", "push", "run", "ps", "cache"):
            self.assertRegex(r.stdout, rf"\n\s+{sub}\s", r.stdout)
        r = run("cache", "stats", "--json", "--cache-dir", tempfile.mkdtemp(prefix="lazyfs-front."))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("{", r.stdout)
        r = run("no-such-command")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("subcommand", r.stderr)

    def test_a_command_is_executed_by_lazyfs_core_in_the_same_process(self):
        # `trace show` of a FIFO blocks in open(2) until a writer comes: while it waits, the process the
        # test started shows which binary is doing the work.
        work = tempfile.mkdtemp(prefix="lazyfs-front.")
        fifo = os.path.join(work, "trace")
        os.mkfifo(fifo)
        proc = subprocess.Popen([LAZYFS, "trace", "show", fifo], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        try:
            core = os.path.realpath(os.path.join(os.path.dirname(LAZYFS), "lazyfs-core"))
            deadline = time.monotonic() + 30
            exe = None
            while time.monotonic() < deadline:
                exe = os.path.realpath(f"/proc/{proc.pid}/exe")
                if exe == core:
                    break
                time.sleep(0.01)  # polling the exec, bounded by the deadline
            self.assertEqual(exe, core, "the front end did not exec lazyfs-core in the same process")
            fd = os.open(fifo, os.O_WRONLY)
            try:
                os.write(fd, b"not a trace\n")
            except BrokenPipeError:
                pass  # the reader saw enough and closed its end first
            finally:
                os.close(fd)
            _, err = proc.communicate(timeout=30)
            self.assertNotEqual(proc.returncode, 0)
            self.assertIn("not a lazyfs trace", err)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
            shutil.rmtree(work, ignore_errors=True)

    def test_cache_stats_prints_sizes_for_people_and_exact_json(self):
        cache = tempfile.mkdtemp(prefix="lazyfs-front.")
        try:
            exact = run("cache", "stats", "--json", "--cache-dir", cache)
            self.assertEqual(exact.returncode, 0, exact.stderr)
            stats = json.loads(exact.stdout)
            self.assertEqual(stats["max_bytes"], 10 << 30)  # the default --cache-size, exact
            people = run("cache", "stats", "--cache-dir", cache)
            self.assertEqual(people.returncode, 0, people.stderr)
            self.assertRegex(people.stdout, r"\nmax_bytes +10\.0 GiB\n")
            self.assertRegex(people.stdout, r"\nchunk_bytes +0 B\n")
            self.assertRegex(people.stdout, r"\nchunks +0\n")  # counts stay counts
            self.assertNotIn(str(stats["map_bytes"]), people.stdout)
        finally:
            shutil.rmtree(cache, ignore_errors=True)

    def test_run_help_and_bad_options_stay_in_the_front_end(self):
        r = run("run", "--help")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("--keep-mount", r.stdout)
        self.assertNotIn("\n  mount", r.stdout)  # only run's help: the front end knows no other command
        r = run("run", "--network", "bridge", "oci:/nonexistent", "--", "true")
        self.assertEqual(r.returncode, 125)
        self.assertIn("--network must be none or host", r.stderr)

    def test_run_without_live_mount_is_resolved_by_lazyfs_core(self):
        missing = tempfile.mkdtemp(prefix="lazyfs-front.") + "/no-layout"
        r = run("run", "--keep-mount", "0", f"oci:{missing}:latest", "--", "true")
        self.assertEqual(r.returncode, 125)
        self.assertIn(missing, r.stderr)  # lazyfs-core tried to open the layout and said which

    def test_missing_core_is_a_clear_error(self):
        d = tempfile.mkdtemp(prefix="lazyfs-front.")
        try:
            lone = os.path.join(d, "lazyfs")
            shutil.copy(LAZYFS, lone)
            r = subprocess.run([lone, "--version"], capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 125)
            self.assertIn(os.path.join(d, "lazyfs-core"), r.stderr)
        finally:
            shutil.rmtree(d)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--lazyfs", required=True)
    args, rest = ap.parse_known_args()
    LAZYFS = os.path.abspath(args.lazyfs)
    unittest.main(argv=[sys.argv[0], *rest], verbosity=2)
