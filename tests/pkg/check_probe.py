#!/usr/bin/env python3
"""Compare pep_probe's answers with pypa/packaging's.

Usage: check_probe.py PROBE EXPECTED.jsonl

EXPECTED.jsonl holds one {"q": query, "a": answer} object per line (see
data/README.md). Every query goes to one PROBE process on stdin; its answers
come back one per line and are compared with the expected ones as parsed JSON
values, with true/false kept apart from 1/0 (Python's == would not).

Prints a pass/fail count per query kind and the first mismatches. Exits 1 on
any mismatch, when the probe fails or when it answers a different number of
lines; 0 otherwise.
"""

from __future__ import annotations

import collections
import json
import subprocess
import sys

MAX_SHOWN = 30
TIMEOUT_S = 300


def read_jsonl(text: str) -> list:
    # Split on "\n" only: str.splitlines() would also break at U+2028, U+2029,
    # U+0085 and friends, which some queries hold.
    return [json.loads(line) for line in text.split("\n") if line.strip()]


def same(a, b) -> bool:
    """JSON equality that keeps booleans apart from numbers."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


def dumps(obj) -> str:
    return json.dumps(obj, ensure_ascii=False)


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    probe, expected_path = sys.argv[1], sys.argv[2]
    with open(expected_path, encoding="utf-8", newline="") as f:
        cases = read_jsonl(f.read())

    stdin = "".join(json.dumps(c["q"], ensure_ascii=False, separators=(",", ":")) + "\n" for c in cases)
    try:
        run = subprocess.run([probe], input=stdin.encode("utf-8"), capture_output=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        print(f"FAIL: {probe} did not finish within {TIMEOUT_S} s", file=sys.stderr)
        return 1
    failed = False
    if run.returncode != 0:
        print(f"FAIL: {probe} exited with status {run.returncode}", file=sys.stderr)
        sys.stderr.write(run.stderr.decode("utf-8", "replace")[-2000:])
        failed = True

    lines = [line for line in run.stdout.decode("utf-8", "replace").split("\n") if line]
    if len(lines) != len(cases):
        print(f"FAIL: {len(cases)} queries but {len(lines)} answers", file=sys.stderr)
        failed = True

    counts: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])  # kind -> [pass, fail]
    mismatches = []
    for i, case in enumerate(cases):
        kind = case["q"][0]
        if i >= len(lines):
            got, ok = "<no answer>", False
        else:
            try:
                got = json.loads(lines[i])
                ok = same(got, case["a"])
            except json.JSONDecodeError:
                got, ok = f"<not JSON: {lines[i]!r}>", False
        counts[kind][0 if ok else 1] += 1
        if not ok:
            mismatches.append((case["q"], case["a"], got))

    width = max((len(k) for k in counts), default=4)
    for kind, (passed, failed_count) in sorted(counts.items()):
        print(f"{kind:<{width}}  {passed:5d} pass  {failed_count:5d} fail")
    total_fail = sum(f for _, f in counts.values())
    print(f"{'total':<{width}}  {len(cases) - total_fail:5d} pass  {total_fail:5d} fail")

    for query, expected, got in mismatches[:MAX_SHOWN]:
        print(f"\nquery:    {dumps(query)}\nexpected: {dumps(expected)}\ngot:      {dumps(got)}")
    if len(mismatches) > MAX_SHOWN:
        print(f"\n... and {len(mismatches) - MAX_SHOWN} more mismatches")

    return 1 if failed or mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
