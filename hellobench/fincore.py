"""The independent measure of "bytes needed": page-cache residency (util-linux `fincore`) of an unpacked
rootfs after the page cache was dropped and the task ran once on it.

    drop_caches(); <run the task on ROOTFS>; resident_bytes(ROOTFS)

It counts whole resident pages, kernel readahead included (as lazyfs's own 4 KiB-page figure sees the
reads that readahead makes through FUSE).
"""

import os
import subprocess


def drop_caches():
    subprocess.run(["sync"], check=True)
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def _regular_files(root):
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if st.st_size > 0 and (st.st_mode & 0o170000) == 0o100000:
                yield path


def resident_bytes(root, batch=500):
    """Sum of resident page bytes over the regular files under `root` (clamped to each file's size)."""
    files = list(_regular_files(root))
    total = 0
    for i in range(0, len(files), batch):
        part = files[i:i + batch]
        proc = subprocess.run(["fincore", "--bytes", "--noheadings", "--raw", "--output", "RES,SIZE", *part],
                              capture_output=True, text=True)
        for line in proc.stdout.splitlines():
            fields = line.split()
            if len(fields) == 2 and fields[0].isdigit() and fields[1].isdigit():
                total += min(int(fields[0]), int(fields[1]))
    return total
