"""Image recipes for the lazyfs integration tests (data for imagebuilder.py).

`features(compression)` is the union-semantics torture image the mount tests compare against
`umoci unpack`; `big()` is one 1 GiB file for the throughput benchmark, built only on request
(`python3 imagebuilder.py build big`). Every constant a test checks (paths, offsets, expected link
counts) lives here so tests and recipes cannot drift apart.
"""

import struct

from imagebuilder import (blockdev, chardev, directory, fifo, hardlink, layer, opaque, pseudo_random,
                          recipe, regular, symlink, whiteout, zeros, zstd_available)

SPARSE_PATH = "data/sparse.img"
SPARSE_SIZE = 200 << 20
SPARSE_PATCHES = [(0, b"HEAD"), ((1 << 20) + 7, b"\x01\x02\x03"), (100 << 20, b"middle"),
                  (SPARSE_SIZE - 1, b"\xff")]
RANDOM_PATH = "data/random.bin"   # incompressible; makes "only some chunks were fetched" measurable
RANDOM_SIZE = 24 << 20
SMALL_PATH = "etc/motd"           # a small file in the top layer that the laziness test reads
MANY_DIR, MANY_COUNT = "many", 20_000
DEEP_LEVELS = 60
LONG_NAME = "L" * 250 + ".long"   # 255 bytes: NAME_MAX
LONG_DIR = "D" * 255
UNICODE_NAME = "ünïcødé-日本語-🦀.txt"
HARDLINK_GROUP = ["links/hl-a", "links/hl-b", "links/sub/hl-c"]  # one inode, nlink 3

# struct vfs_cap_data, revision 2, effective bit set: cap_net_bind_service (10) permitted.
CAPABILITY = struct.pack("<IIIII", 0x02000001, 1 << 10, 0, 0, 0)


def _deep_path(levels):
    return "/".join(f"level{i:02d}" for i in range(levels))


def _base_layer():
    """Layer 1: everything the later layers change, plus the static features."""
    e = [
        directory("etc"),
        regular("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"),
        regular("etc/hostname", b"lower\n"),
        # Whiteout targets.
        regular("del/gone-file", b"you should not see me\n"),
        directory("del/gone-dir"),
        regular("del/gone-dir/child", b"nor me\n"),
        regular("del/kept", b"kept\n"),
        # Opaque directory: lower contents disappear.
        directory("opq", mode=0o750, uid=11, gid=12),
        regular("opq/old-a", b"old a\n"),
        directory("opq/old-sub"),
        regular("opq/old-sub/old-b", b"old b\n"),
        # A file that becomes a directory, and a directory that becomes a file.
        regular("swap/file-then-dir", b"I was a file\n"),
        directory("swap/dir-then-file"),
        regular("swap/dir-then-file/child", b"I was in a dir\n"),
        directory("swap/dir-then-file/subdir"),
        # Hardlinks: a group of three across directories, and a pair split later by a whiteout.
        regular(HARDLINK_GROUP[0], b"linked content\n", mode=0o640, uid=7, gid=8),
        hardlink(HARDLINK_GROUP[1], HARDLINK_GROUP[0]),
        hardlink(HARDLINK_GROUP[2], HARDLINK_GROUP[0]),
        regular("links/pair-x", b"pair\n"),
        hardlink("links/pair-y", "links/pair-x"),
        # Symlinks.
        symlink("sym/relative", "../etc/passwd"),
        symlink("sym/absolute", "/etc/passwd"),
        symlink("sym/dangling", "does/not/exist"),
        symlink("sym/escape", "../../../../etc/passwd"),
        symlink("sym/to-dir", "../etc"),
        # Empty and big files.
        regular("data/empty", b""),
        regular(SPARSE_PATH, content=zeros(SPARSE_SIZE, SPARSE_PATCHES)),
        regular(RANDOM_PATH, content=pseudo_random(RANDOM_SIZE, seed=7)),
        # Names.
        regular("names/with space", b"space\n"),
        regular("names/ with leading and trailing spaces ", b"spaces\n"),
        regular(f"names/{UNICODE_NAME}", "unicode ✓\n".encode()),
        regular(f"names/{LONG_NAME}", b"long name\n"),
        directory(f"names/{LONG_DIR}"),
        regular(f"names/{LONG_DIR}/{LONG_NAME}", b"long in long\n"),
        regular("names/newline\nin-name", b"newline\n"),
        # Special files.
        fifo("dev/fifo", mode=0o600),
        chardev("dev/null", 1, 3),
        chardev("dev/odd-char", 240, 70000),  # minor above 255: needs the new dev_t encoding
        blockdev("dev/loop0", 7, 0),
        # Modes and owners.
        regular("modes/suid", b"#!/bin/sh\n", mode=0o4755),
        regular("modes/sgid", b"#!/bin/sh\n", mode=0o2755),
        regular("modes/suid-sgid-odd-owner", b"x\n", mode=0o6750, uid=1234, gid=5678),
        directory("modes/sticky", mode=0o1777),
        directory("modes/sgid-dir", mode=0o2775, gid=5678),
        regular("modes/no-perms", b"secret\n", mode=0o000),
        regular("owners/odd", b"odd\n", uid=1234, gid=5678),
        directory("owners/odd-dir", uid=4_000_000, gid=65534),
        regular("owners/odd-dir/file", b"x\n", uid=65534, gid=4_000_000),
        # Times.
        regular("times/epoch", b"0\n", mtime=0),
        regular("times/y2038", b"y2038\n", mtime=2**31 + 5),
        regular("times/nanoseconds", b"ns\n", mtime=1_500_000_000, mtime_nsec=123_456_789),
        directory("times/dir-old", mtime=1_000_000_000),
        # Extended attributes.
        regular("xattrs/user", b"x\n", xattrs={"user.foo": b"bar", "user.unicode": "värde".encode()}),
        regular("xattrs/binary", b"x\n", xattrs={"user.bin": bytes(range(256))}),
        regular("xattrs/capability", b"\x7fELF", mode=0o755, xattrs={"security.capability": CAPABILITY}),
        directory("xattrs/dir", xattrs={"user.on-dir": b"yes"}),
    ]
    e.append(directory(MANY_DIR))
    e += [regular(f"{MANY_DIR}/entry-{i:05d}", f"{i}\n".encode() if i % 3 else b"") for i in range(MANY_COUNT)]
    e.append(regular(f"deep/{_deep_path(DEEP_LEVELS)}/leaf", b"deep leaf\n"))
    return e


def _middle_layer():
    """Layer 2: whiteouts, opaque dir, type swaps, metadata-only and content changes."""
    return [
        directory("etc", mode=0o700, mtime=1_650_000_000),  # metadata-only change of a lower dir
        regular("etc/hostname", b"upper\n", mtime=1_700_000_000),
        directory("del"),
        whiteout("del/gone-file"),
        whiteout("del/gone-dir"),
        directory("opq", mode=0o755),
        opaque("opq"),
        regular("opq/new", b"new in opaque dir\n"),
        directory("swap"),
        directory("swap/file-then-dir", mode=0o700),
        regular("swap/file-then-dir/child", b"now a dir\n"),
        regular("swap/dir-then-file", b"now a file\n", mode=0o600),
        regular(SMALL_PATH, b"hello from the middle layer\n"),
    ]


def _top_layer():
    """Layer 3: re-create a whited-out name as another type; split a hardlink pair by a whiteout."""
    return [
        directory("del"),
        symlink("del/gone-file", "kept"),
        directory("links"),
        whiteout("links/pair-y"),  # links/pair-x must drop to nlink 1
        whiteout("does-not-exist-anywhere"),  # a whiteout of nothing is legal and invisible
    ]


def features(compression="gzip"):
    """The union/attribute torture image, three layers. compression: gzip, tar or zstd."""
    if compression == "zstd" and not zstd_available():
        return None
    return recipe(f"features-{compression}" if compression != "gzip" else "features",
                  [layer(_base_layer(), compression), layer(_middle_layer(), compression),
                   layer(_top_layer(), compression)], tag="features")


BIG_PATH = "big/blob.bin"
BIG_SIZE = 1 << 30


def big():
    """One 1 GiB incompressible file (throughput benchmark); gzip level 1 keeps the build fast."""
    return recipe("big", [layer([regular(BIG_PATH, content=pseudo_random(BIG_SIZE, seed=1), mode=0o644)],
                                "gzip", level=1)])


ALL = {
    "features": features,
    "features-tar": lambda: features("tar"),
    "features-zstd": lambda: features("zstd"),
    "big": big,
}
