"""Writes tests/pkg/data/tiny-1.0-py3-none-any.whl, the real wheel zip_member_test reads.

Python's zipfile with ZIP_DEFLATED, as wheel builders write wheels: a package, then the .dist-info
with METADATA, WHEEL and a RECORD of sha256 digests. Fixed timestamps and permissions, so the same
Python and zlib give the same bytes. Run from the repository root: python3 tests/pkg/make_tiny_wheel.py
"""
import base64
import hashlib
import pathlib
import zipfile

OUT = pathlib.Path(__file__).parent / "data" / "tiny-1.0-py3-none-any.whl"
DIST_INFO = "tiny-1.0.dist-info"

METADATA = """Metadata-Version: 2.1
Name: tiny
Version: 1.0
Summary: A tiny wheel for lazyfs's zip member tests
Requires-Python: >=3.8
Requires-Dist: packaging (>=21)
Requires-Dist: tomli ; python_version < "3.11"
Provides-Extra: test
Requires-Dist: pytest ; extra == 'test'

A tiny package. This description is long enough to be worth deflating: """ + "tiny " * 40 + "\n"

FILES = [
    ("tiny/__init__.py", '"""tiny."""\n\nfrom tiny.core import answer\n\n__all__ = ["answer"]\n'),
    ("tiny/core.py", "def answer():\n    return 42\n\n\n" + "# filler line to compress\n" * 30),
    (f"{DIST_INFO}/METADATA", METADATA),
    (f"{DIST_INFO}/WHEEL", "Wheel-Version: 1.0\nGenerator: make_tiny_wheel.py\nRoot-Is-Purelib: true\nTag: py3-none-any\n"),
    (f"{DIST_INFO}/top_level.txt", "tiny\n"),
]


def record_line(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}\n"


def main():
    members = [(name, text.encode()) for name, text in FILES]
    record = "".join(record_line(name, data) for name, data in members) + f"{DIST_INFO}/RECORD,,\n"
    members.append((f"{DIST_INFO}/RECORD", record.encode()))
    with zipfile.ZipFile(OUT, "w", compression=zipfile.ZIP_DEFLATED) as whl:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            whl.writestr(info, data)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
