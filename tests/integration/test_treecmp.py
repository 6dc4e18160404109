#!/usr/bin/env python3
"""Self-test of treecmp.py: it must call equal trees equal and catch every kind of difference.

Needs no lazyfs and no FUSE (root is needed for chown/mknod/security xattrs, as in the other integration
tests). Each test builds the same small tree twice, changes one attribute on side B and checks that
treecmp reports exactly that path with the expected description.
"""

import os
import shutil
import stat
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import treecmp  # noqa: E402

MTIME = 1_600_000_000


def make_tree(root):
    """A tree touching every attribute treecmp checks."""
    os.makedirs(os.path.join(root, "dir/sub"))
    files = {"dir/file": b"content\n", "dir/sub/other": b"other\n", "big": bytes(range(256)) * (3 << 12)}
    for rel, data in files.items():
        with open(os.path.join(root, rel), "wb") as f:
            f.write(data)
    os.link(os.path.join(root, "dir/file"), os.path.join(root, "dir/sub/link"))
    os.symlink("../big", os.path.join(root, "dir/sym"))
    os.mknod(os.path.join(root, "dir/chr"), 0o644 | stat.S_IFCHR, os.makedev(1, 3))
    os.mkfifo(os.path.join(root, "dir/fifo"))
    os.setxattr(os.path.join(root, "dir/file"), "user.k", b"v")
    os.chown(os.path.join(root, "dir/sub/other"), 1234, 5678)
    os.chmod(os.path.join(root, "dir/sub/other"), 0o4755)
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames + dirnames + ["."]:
            os.utime(os.path.join(dirpath, name), ns=(MTIME * 10**9, MTIME * 10**9), follow_symlinks=False)


class TreeCmpTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="treecmp-test.")
        self.a, self.b = os.path.join(self.tmp, "a"), os.path.join(self.tmp, "b")
        make_tree(self.a)
        make_tree(self.b)

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def p(self, rel):
        return os.path.join(self.b, rel)

    def touch_back(self, rel):
        """Restore the mtime a change disturbed (of the path and its parent directory)."""
        for path in (self.p(rel), os.path.dirname(self.p(rel))):
            if os.path.lexists(path):
                os.utime(path, ns=(MTIME * 10**9, MTIME * 10**9), follow_symlinks=False)

    def assertDiff(self, rel, needle):
        res = treecmp.compare(self.a, self.b)
        self.assertFalse(res.equal, "difference not detected")
        hits = [what for path, what in res.differences if path == rel and needle in what]
        self.assertTrue(hits, f"expected {needle!r} at {rel!r}; got:\n{res.report()}")

    def test_equal_trees(self):
        res = treecmp.compare(self.a, self.b)
        self.assertTrue(res.equal, res.report())
        self.assertEqual(treecmp.main([self.a, self.b]), 0)

    def test_mode(self):
        os.chmod(self.p("dir/file"), 0o600)
        self.assertDiff("dir/file", "mode 0644 != 0600")

    def test_suid_bit(self):
        os.chmod(self.p("dir/sub/other"), 0o755)  # chmod after chown: suid is ours to clear
        self.assertDiff("dir/sub/other", "mode 4755 != 0755")

    def test_uid_gid(self):
        os.chown(self.p("dir/file"), 1, 2)
        self.assertDiff("dir/file", "uid 0 != 1")
        self.assertDiff("dir/file", "gid 0 != 2")

    def test_xattr_value_and_presence(self):
        os.setxattr(self.p("dir/file"), "user.k", b"other")
        os.setxattr(self.p("dir/sub/other"), "user.extra", b"1")
        self.assertDiff("dir/file", "xattr user.k value")
        self.assertDiff("dir/sub/other", "xattr user.extra only in B")

    def test_security_capability(self):
        cap = (0x02000001).to_bytes(4, "little") + (1 << 10).to_bytes(4, "little") + bytes(12)
        os.setxattr(self.p("big"), "security.capability", cap)
        self.assertDiff("big", "xattr security.capability only in B")

    def test_hardlink_split(self):
        os.unlink(self.p("dir/sub/link"))
        shutil.copy2(self.p("dir/file"), self.p("dir/sub/link"))
        self.touch_back("dir/sub/link")
        self.assertDiff("dir/sub/link", "hardlink group")
        self.assertDiff("dir/file", "nlink 2 != 1")

    def test_hardlink_regrouped_same_nlink(self):
        # Same link counts on both sides, different partners: only the group check can see it.
        for side in (self.a, self.b):
            os.link(os.path.join(side, "dir/sub/other"), os.path.join(side, "dir/other-link"))
        os.unlink(self.p("dir/other-link"))
        os.link(self.p("dir/file"), self.p("dir/other-link"))
        os.unlink(self.p("dir/sub/link"))
        os.link(self.p("dir/sub/other"), self.p("dir/sub/link"))
        for side in (self.a, self.b):
            for rel in ("dir/other-link", "dir/sub/link", "dir", "dir/sub"):
                os.utime(os.path.join(side, rel), ns=(MTIME * 10**9,) * 2, follow_symlinks=False)
        self.assertDiff("dir/sub/link", "hardlink group")

    def test_symlink_target(self):
        os.unlink(self.p("dir/sym"))
        os.symlink("../bog", self.p("dir/sym"))
        self.touch_back("dir/sym")
        self.assertDiff("dir/sym", "symlink target '../big' != '../bog'")

    def test_content_same_size(self):
        with open(self.p("big"), "r+b") as f:
            f.seek(2 << 20)
            f.write(b"X")
        self.touch_back("big")
        self.assertDiff("big", "content sha256")

    def test_size(self):
        with open(self.p("dir/sub/other"), "ab") as f:
            f.write(b"more")
        self.touch_back("dir/sub/other")
        self.assertDiff("dir/sub/other", "size 6 != 10")

    def test_rdev(self):
        os.unlink(self.p("dir/chr"))
        os.mknod(self.p("dir/chr"), 0o644 | stat.S_IFCHR, os.makedev(1, 5))
        self.touch_back("dir/chr")
        self.assertDiff("dir/chr", "rdev 1:3 != 1:5")

    def test_type(self):
        os.unlink(self.p("dir/fifo"))
        with open(self.p("dir/fifo"), "wb"):
            pass
        os.chmod(self.p("dir/fifo"), 0o644)
        self.touch_back("dir/fifo")
        self.assertDiff("dir/fifo", "type fifo != file")

    def test_missing_and_extra(self):
        os.unlink(self.p("dir/sub/other"))
        with open(self.p("dir/new"), "wb"):
            pass
        self.assertDiff("dir/sub/other", "only in A")
        self.assertDiff("dir/new", "only in B")
        self.assertEqual(treecmp.main([self.a, self.b]), 1)

    def test_mtime_seconds(self):
        os.utime(self.p("dir/file"), (MTIME + 1, MTIME + 1))
        self.assertDiff("dir/file", "mtime")

    def test_mtime_nanoseconds_when_both_have_them(self):
        for side, ns in ((self.a, 1), (self.b, 2)):
            os.utime(os.path.join(side, "dir/file"), ns=(MTIME * 10**9 + ns,) * 2)
        self.assertDiff("dir/file", "mtime 1600000000000000001 != 1600000000000000002 (ns)")

    def test_mtime_nanoseconds_ignored_when_one_side_lacks_them(self):
        os.utime(os.path.join(self.a, "dir/file"), ns=(MTIME * 10**9 + 5,) * 2)
        res = treecmp.compare(self.a, self.b)
        self.assertTrue(res.equal, res.report())
        self.assertIn("whole seconds", res.notes[0])

    def test_directory_nlink(self):
        os.mkdir(self.p("dir/sub/extra-dir"))
        os.utime(self.p("dir/sub"), ns=(MTIME * 10**9,) * 2)
        self.assertDiff("dir/sub", "nlink 2 != 3")

    def test_root_directory_attributes(self):
        os.chmod(self.b, 0o700)
        self.assertDiff(".", "mode 0755 != 0700")


if __name__ == "__main__":
    harness.main()
