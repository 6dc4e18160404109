#!/usr/bin/env python3
"""Compare two directory trees attribute by attribute (lazyfs integration-test harness).

Used to prove a lazyfs mount equals the rootfs `umoci unpack` makes from the same image. Nothing is
followed: every path is examined with lstat. For each path present on either side it compares

  - file type and the full mode (permission bits incl. suid/sgid/sticky),
  - uid, gid,
  - size (regular files and symlinks; see EXCLUSIONS for directories),
  - mtime: whole seconds always; nanoseconds too when *both* trees carry sub-second mtimes anywhere
    (a tree whose every mtime is a whole second evidently does not keep them; the report says which),
  - symlink target, device numbers (st_rdev) of char/block devices,
  - xattrs: every name from listxattr (no follow), and each value,
  - link count (st_nlink) of every non-directory and directory,
  - hardlink groups: paths sharing an inode on one side must share one on the other,
  - content: sha256 of regular files, streamed, only when sizes agree.

EXCLUSIONS (each is deliberate):
  - atime and ctime: atime changes when we read to compare; ctime cannot be set by an unpacker.
  - st_size and st_blocks of directories: a directory's size is the filesystem's private layout
    (ext4 reports 4096 * blocks, FUSE servers report what they like); it carries no image data.
  - st_blocks of files: allocation (sparse or not) is a property of the filesystem, not the image.
  - st_dev / st_ino values themselves: only the *grouping* of inodes is meaningful across filesystems.

CLI:    python3 treecmp.py A B [--no-content] [--max 200]   exit 0 equal, 1 different, 2 usage error.
Module: compare(a, b, content=True, ignore={path: reason}) -> Result with .equal, .differences (list of (path, what)), .notes.
"""

import argparse
import hashlib
import os
import stat
import sys

HASH_BLOCK = 1 << 20


class Result:
    """Outcome of a comparison: `differences` holds (relative path, description) pairs."""

    def __init__(self):
        self.differences = []
        self.notes = []

    @property
    def equal(self):
        return not self.differences

    def add(self, path, what):
        self.differences.append((path, what))

    def report(self, limit=200):
        lines = [f"note: {n}" for n in self.notes]
        for path, what in self.differences[:limit]:
            lines.append(f"{path!r}: {what}")
        if len(self.differences) > limit:
            lines.append(f"... and {len(self.differences) - limit} more differences")
        lines.append("trees are equal" if self.equal else f"{len(self.differences)} differences")
        return "\n".join(lines)


def scan(root):
    """Map relative path ('.' for the root) -> os.stat_result (lstat) for the whole tree."""
    entries = {".": os.lstat(root)}
    stack = [(root, "")]
    while stack:
        abs_dir, rel_dir = stack.pop()
        with os.scandir(abs_dir) as it:
            for de in it:
                rel = f"{rel_dir}/{de.name}" if rel_dir else de.name
                st = os.lstat(de.path)
                entries[rel] = st
                if stat.S_ISDIR(st.st_mode):
                    stack.append((de.path, rel))
    return entries


def has_subsecond_mtimes(entries):
    return any(st.st_mtime_ns % 1_000_000_000 for st in entries.values())


def xattrs_of(path):
    """name -> value, without following symlinks; an OSError is returned as the value, not raised."""
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as e:
        return {"<listxattr error>": f"errno {e.errno} ({e.strerror})"}
    out = {}
    for name in sorted(names):
        try:
            out[name] = os.getxattr(path, name, follow_symlinks=False)
        except OSError as e:
            out[name] = f"<getxattr error errno {e.errno} ({e.strerror})>"
    return out


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(HASH_BLOCK):
            digest.update(chunk)
    return digest.hexdigest()


def type_name(mode):
    for test, name in ((stat.S_ISREG, "file"), (stat.S_ISDIR, "dir"), (stat.S_ISLNK, "symlink"),
                       (stat.S_ISCHR, "chardev"), (stat.S_ISBLK, "blockdev"), (stat.S_ISFIFO, "fifo"),
                       (stat.S_ISSOCK, "socket")):
        if test(mode):
            return name
    return f"unknown({stat.S_IFMT(mode):o})"


def inode_groups(entries):
    """rel path -> sorted tuple of all paths sharing its inode (non-directories only)."""
    by_inode = {}
    for rel, st in entries.items():
        if not stat.S_ISDIR(st.st_mode):
            by_inode.setdefault((st.st_dev, st.st_ino), []).append(rel)
    return {rel: tuple(sorted(group)) for group in by_inode.values() for rel in group}


def compare_meta(rel, sa, sb, ns, res):
    ta, tb = type_name(sa.st_mode), type_name(sb.st_mode)
    if ta != tb:
        res.add(rel, f"type {ta} != {tb}")
        return False
    if sa.st_mode != sb.st_mode:
        res.add(rel, f"mode {stat.S_IMODE(sa.st_mode):04o} != {stat.S_IMODE(sb.st_mode):04o}")
    if sa.st_uid != sb.st_uid:
        res.add(rel, f"uid {sa.st_uid} != {sb.st_uid}")
    if sa.st_gid != sb.st_gid:
        res.add(rel, f"gid {sa.st_gid} != {sb.st_gid}")
    if ta in ("file", "symlink") and sa.st_size != sb.st_size:
        res.add(rel, f"size {sa.st_size} != {sb.st_size}")
    ma, mb = (sa.st_mtime_ns, sb.st_mtime_ns) if ns else (sa.st_mtime_ns // 10**9, sb.st_mtime_ns // 10**9)
    if ma != mb:
        res.add(rel, f"mtime {ma} != {mb} ({'ns' if ns else 's'})")
    if ta in ("chardev", "blockdev") and sa.st_rdev != sb.st_rdev:
        res.add(rel, f"rdev {os.major(sa.st_rdev)}:{os.minor(sa.st_rdev)} != "
                     f"{os.major(sb.st_rdev)}:{os.minor(sb.st_rdev)}")
    if sa.st_nlink != sb.st_nlink:
        res.add(rel, f"nlink {sa.st_nlink} != {sb.st_nlink}")
    return True


def compare_entry(rel, a, b, sa, sb, ns, content, res):
    if not compare_meta(rel, sa, sb, ns, res):
        return
    pa, pb = os.path.join(a, rel), os.path.join(b, rel)
    if stat.S_ISLNK(sa.st_mode):
        la, lb = os.readlink(pa), os.readlink(pb)
        if la != lb:
            res.add(rel, f"symlink target {la!r} != {lb!r}")
    xa, xb = xattrs_of(pa), xattrs_of(pb)
    for name in sorted(set(xa) | set(xb)):
        if name not in xa or name not in xb:
            res.add(rel, f"xattr {name} only in {'A' if name in xa else 'B'}")
        elif xa[name] != xb[name]:
            res.add(rel, f"xattr {name} value {xa[name]!r:.80} != {xb[name]!r:.80}")
    if content and stat.S_ISREG(sa.st_mode) and sa.st_size == sb.st_size:
        try:
            ha, hb = sha256_of(pa), sha256_of(pb)
        except OSError as e:
            res.add(rel, f"read failed: {e}")
            return
        if ha != hb:
            res.add(rel, f"content sha256 {ha[:16]} != {hb[:16]}")


def compare(a, b, content=True, ignore=None):
    """Compare tree `a` with tree `b`; returns a Result (A is `a`, B is `b` in messages).

    `ignore` maps relative paths to the reason they are skipped (on both sides); callers must give a
    reason, and each skipped path is listed in the notes so an exclusion is never silent."""
    res = Result()
    ea, eb = scan(a), scan(b)
    for rel, why in sorted((ignore or {}).items()):
        found = [side.pop(rel, None) is not None for side in (ea, eb)]
        if any(found):
            res.notes.append(f"ignored {rel!r}: {why}")
    ns = has_subsecond_mtimes(ea) and has_subsecond_mtimes(eb)
    res.notes.append("mtimes compared to the nanosecond (both trees have sub-second mtimes)" if ns else
                     "mtimes compared in whole seconds (a tree has no sub-second mtimes)")
    for rel in sorted(set(ea) - set(eb)):
        res.add(rel, f"only in A ({type_name(ea[rel].st_mode)})")
    for rel in sorted(set(eb) - set(ea)):
        res.add(rel, f"only in B ({type_name(eb[rel].st_mode)})")
    common = sorted(set(ea) & set(eb))
    for rel in common:
        compare_entry(rel, a, b, ea[rel], eb[rel], ns, content, res)
    ga, gb = inode_groups(ea), inode_groups(eb)
    for rel in common:
        if rel in ga and rel in gb and ga[rel] != gb[rel]:
            res.add(rel, f"hardlink group {list(ga[rel])} != {list(gb[rel])}")
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description="Compare two trees (lstat attributes, xattrs, content).")
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--no-content", action="store_true", help="skip content hashing")
    ap.add_argument("--max", type=int, default=200, help="differences to print")
    args = ap.parse_args(argv)
    for d in (args.a, args.b):
        if not os.path.isdir(d):
            print(f"not a directory: {d}", file=sys.stderr)
            return 2
    res = compare(args.a, args.b, content=not args.no_content)
    print(res.report(args.max))
    return 0 if res.equal else 1


if __name__ == "__main__":
    sys.exit(main())
