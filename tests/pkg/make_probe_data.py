#!/usr/bin/env python3
"""Compute the expected answers of the pep_probe conformance data.

Reads one probe query per line from ``data/probe_cases.jsonl`` and writes
``data/probe_expected.jsonl`` (one ``{"q": query, "a": answer}`` object per
line, same order), computing every answer with the reference implementation,
pypa/packaging, imported from ``--packaging-src`` (the directory that contains
the ``packaging`` package, e.g. a checkout's ``src/``).

The protocol is described in ``data/README.md``.  No answer depends on the
host: markers are always evaluated against the fixed BASE_ENV below.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

BASE_ENV = {
    "implementation_name": "cpython",
    "implementation_version": "3.11.7",
    "os_name": "posix",
    "platform_machine": "x86_64",
    "platform_release": "6.1.0-13-amd64",
    "platform_system": "Linux",
    "platform_version": "#1 SMP PREEMPT_DYNAMIC Debian 6.1.55-1",
    "platform_python_implementation": "CPython",
    "python_full_version": "3.11.7",
    "python_version": "3.11",
    "sys_platform": "linux",
}


def make_answerer():
    from packaging.markers import InvalidMarker, Marker
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.version import InvalidVersion, Version

    def version(s):
        try:
            v = Version(s)
        except InvalidVersion:
            return "INVALID"
        return {
            "normalized": str(v),
            "public": v.public,
            "base_version": v.base_version,
            "epoch": v.epoch,
            "release": list(v.release),
            "pre": list(v.pre) if v.pre is not None else None,
            "post": v.post,
            "dev": v.dev,
            "local": v.local,
            "is_prerelease": v.is_prerelease,
            "is_postrelease": v.is_postrelease,
            "is_devrelease": v.is_devrelease,
        }

    def compare(a, b):
        try:
            va, vb = Version(a), Version(b)
        except InvalidVersion:
            return "INVALID"
        return (va > vb) - (va < vb)

    def specifier_set(s):
        try:
            return SpecifierSet(s)
        except InvalidSpecifier:
            return None

    def specifier(s):
        ss = specifier_set(s)
        return "INVALID" if ss is None else str(ss)

    def contains(spec, item, pre):
        ss = specifier_set(spec)
        return "INVALID" if ss is None else ss.contains(item, prereleases=pre)

    def filter_(spec, items, pre):
        ss = specifier_set(spec)
        return "INVALID" if ss is None else list(ss.filter(items, prereleases=pre))

    def marker_str(m):
        try:
            return str(Marker(m))
        except InvalidMarker:
            return "INVALID"

    def marker(m, env):
        try:
            parsed = Marker(m)
        except InvalidMarker:
            return "INVALID"
        try:
            return parsed.evaluate({**BASE_ENV, **env})
        except Exception:  # UndefinedComparison, UndefinedEnvironmentName, ...
            return "ERROR"

    def requirement(s):
        try:
            r = Requirement(s)
        except InvalidRequirement:
            return "INVALID"
        return {
            "name": r.name,
            "extras": sorted(r.extras),
            "specifier": str(r.specifier),
            "marker": str(r.marker) if r.marker is not None else None,
            "url": r.url,
            "str": str(r),
        }

    handlers = {
        "version": version,
        "compare": compare,
        "specifier": specifier,
        "contains": contains,
        "filter": filter_,
        "marker_str": marker_str,
        "marker": marker,
        "requirement": requirement,
    }

    def answer(query):
        kind, *args = query
        return handlers[kind](*args)

    return answer


def dumps(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packaging-src", required=True,
                    help="directory containing the 'packaging' package")
    ap.add_argument("--cases", default=os.path.join(HERE, "data", "probe_cases.jsonl"))
    ap.add_argument("--output",
                    default=os.path.join(HERE, "data", "probe_expected.jsonl"))
    args = ap.parse_args()

    sys.path.insert(0, os.path.abspath(args.packaging_src))
    import packaging

    if not os.path.abspath(packaging.__file__).startswith(
        os.path.abspath(args.packaging_src)
    ):
        sys.exit(f"packaging was imported from {packaging.__file__}, "
                 f"not from {args.packaging_src}")
    answer = make_answerer()

    counts = {}
    with open(args.cases, encoding="utf-8") as src, \
            open(args.output, "w", encoding="utf-8", newline="\n") as out:
        for lineno, line in enumerate(src, 1):
            if not line.strip():
                continue
            query = json.loads(line)
            try:
                result = answer(query)
            except Exception as exc:
                sys.exit(f"{args.cases}:{lineno}: {dumps(query)}: "
                         f"unexpected {type(exc).__name__}: {exc}")
            out.write(dumps({"q": query, "a": result}) + "\n")
            counts[query[0]] = counts.get(query[0], 0) + 1

    total = sum(counts.values())
    print(f"packaging {packaging.__version__}: wrote {total} answers to "
          f"{args.output}", file=sys.stderr)
    for kind, n in counts.items():
        print(f"  {kind:12} {n}", file=sys.stderr)


if __name__ == "__main__":
    main()
