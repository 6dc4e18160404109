#!/usr/bin/env python3
"""HelloBench quick mode end to end: `hellobench/run --quick --out TMPDIR` must write a report with a row
of real (numeric) figures for each quick image and no failures.

    python3 test_hellobench_quick.py --lazyfs build/tools/lazyfs

Needs root, crun, umoci, skopeo, docker-registry, tc; the first run builds the images (mmdebstrap).
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, os.path.join(ROOT, "hellobench"))
import images  # noqa: E402

sys.path.insert(0, HERE)
import harness  # noqa: E402

LAZYFS = None
NUMBER = re.compile(r"^-?\d+(\.\d+)?(x|%)?$")


class HelloBenchQuick(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.out = tempfile.mkdtemp(prefix="hellobench-quick-")
        cls.proc = subprocess.run([sys.executable, os.path.join(ROOT, "hellobench", "run"), "--quick", "--out", cls.out,
                                   "--lazyfs", LAZYFS], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  timeout=1800)
        sys.stderr.write(cls.proc.stdout[-4000:] + cls.proc.stderr[-4000:])

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.out, ignore_errors=True)

    def test_exit_status(self):
        self.assertEqual(self.proc.returncode, 0)

    def test_report_rows(self):
        with open(os.path.join(self.out, "report.md")) as f:
            report = f.read()
        start = report.split("## Start time (s)", 1)[1].split("\n## ", 1)[0]
        rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
                for line in start.splitlines() if line.startswith("| ") and not line.startswith("| image")}
        for name in images.QUICK:
            self.assertIn(name, rows, report)
            full, cold, warm, warm_kept = rows[name][2], rows[name][4], rows[name][6], rows[name][7]
            for value in (full, cold, warm, warm_kept):
                self.assertRegex(value, NUMBER, f"{name}: {rows[name]}")
            self.assertGreater(float(full), 0)
            self.assertGreater(float(cold), 0)
        self.assertNotIn("## Failures", report)

    def test_results_figures(self):
        with open(os.path.join(self.out, "results.json")) as f:
            results = json.load(f)
        by_name = {r["name"]: r for r in results["images"]}
        for name in images.QUICK:
            r = by_name[name]
            self.assertNotIn("error", r)
            st = r["cold_stats"]
            self.assertGreater(st["bytes_fetched"], 0, name)
            self.assertLess(st["bytes_fetched"], st["image_bytes_compressed"], name)
            self.assertGreater(st["bytes_needed"], 0, name)
            self.assertGreater(r["fincore_bytes"], 0, name)
            self.assertGreater(r["repeat_hit_ratio"], 0.9, name)

    def test_plots(self):
        self.assertTrue(any(os.path.exists(os.path.join(self.out, "start" + ext)) for ext in (".png", ".svg")))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--lazyfs", required=True)
    args, rest = ap.parse_known_args()
    LAZYFS = os.path.abspath(args.lazyfs)
    harness.main([sys.argv[0], *rest])
