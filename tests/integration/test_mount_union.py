#!/usr/bin/env python3
"""lazyfs mounts must equal `umoci unpack` of the same image (union semantics and every attribute).

Run as root:  python3 test_mount_union.py --lazyfs /path/to/lazyfs   (env LAZYFS_TEST_CACHE for images)

Uses the "features" image (recipes.py: whiteouts, opaque dirs, type swaps, hardlinks, odd symlinks,
200 MiB sparse file, 20,000-entry dir, 60-level nesting, devices, suid/sgid/sticky, odd owners, mtimes,
xattrs) and checks:
  - the plain tar+gzip, plain tar and tar+zstd images mount equal to umoci's rootfs (whole-layer path);
  - `lazyfs convert` output mounts equal to umoci's rootfs of the original (lazy eStargz path);
  - the converted image is still an ordinary image: umoci unpacks it to the same tree (apart from the
    eStargz format files, which a non-eStargz extractor necessarily shows) and its layers carry the
    TOC annotation and the 51-byte footer;
  - reading one small file fetches only some chunks (the cache grows far less than the image);
  - two mounts of one image sharing one cache dir serve correct data at the same time;
  - nanosecond mtimes survive (plain and converted);
  - writes fail with EROFS; `lazyfs umount` leaves the mountpoint empty and the daemon gone;
  - mounting a missing tag fails with a non-zero exit and a message, and leaves nothing mounted.
"""

import errno
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import hostile  # noqa: E402
import imagebuilder  # noqa: E402
import recipes  # noqa: E402
import treecmp  # noqa: E402

# A non-eStargz extractor (umoci) unpacks these format files of an eStargz layer as ordinary files;
# the eStargz spec makes them format data and lazyfs hides them. Only for umoci-of-converted-image.
ESTARGZ_FORMAT_FILES = {name: "eStargz format file, shown by extractors that do not know eStargz"
                        for name in (hostile.TOC_NAME, ".prefetch.landmark", ".no.prefetch.landmark")}


class MountUnionTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        harness.require_environment()
        cls.layout, cls.tag = imagebuilder.build(recipes.features())
        cls.ref = imagebuilder.oci_ref(cls.layout, cls.tag)
        cls.reference = harness.reference_rootfs(cls.layout, cls.tag)
        cls.classdir = tempfile.mkdtemp(prefix="lazyfs-it-union.")
        cls.converted = os.path.join(cls.classdir, "converted")
        cls.convert = harness.run_lazyfs(["convert", cls.ref, f"oci:{cls.converted}:{cls.tag}"], timeout=900)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.classdir, ignore_errors=True)

    def setUp(self):
        self.mounts = harness.MountSet()

    def tearDown(self):
        self.mounts.cleanup()

    # -- helpers -----------------------------------------------------------------------------------

    def converted_ref(self):
        self.assertEqual(self.convert.returncode, 0,
                         f"lazyfs convert failed:\n{self.convert.stdout}\n{self.convert.stderr}")
        return f"oci:{self.converted}:{self.tag}"

    def mount(self, ref, **kw):
        m = self.mounts.mount(ref, **kw)
        self.assertTrue(m.ok, m.describe())
        self.assertTrue(harness.is_mounted(m.mountpoint),
                        f"`lazyfs mount` returned 0 before the mount was live\n{m.describe()}")
        return m

    def assertTreesEqual(self, a, b, ignore=None, context=""):
        res = treecmp.compare(a, b, ignore=ignore)
        for note in res.notes:  # e.g. which mtime precision was compared: visible in the test log
            print(f"  treecmp {context}: {note}", file=sys.stderr)
        self.assertTrue(res.equal, f"{context}\nA={a}\nB={b}\n{res.report(100)}")

    def assertMountEqualsReference(self, ref):
        m = self.mount(ref)
        try:
            self.assertTreesEqual(m.mountpoint, self.reference, context=f"mount of {ref} vs umoci unpack")
        except AssertionError as e:
            raise AssertionError(f"{e}\nlog tail:\n{m.log_tail()}") from None
        self.assertTrue(m.daemon_alive(), "daemon died during the comparison")
        return m

    def feature_image(self, compression):
        rec = recipes.features(compression)
        if rec is None:
            self.skipTest(f"no `zstd` CLI (Debian package zstd): tar+zstd layers not tested")
        layout, tag = imagebuilder.build(rec)
        return imagebuilder.oci_ref(layout, tag)

    # -- equality with umoci -----------------------------------------------------------------------

    def test_plain_targz_mount_equals_umoci(self):
        self.assertMountEqualsReference(self.ref)

    def test_plain_tar_mount_equals_umoci(self):
        self.assertMountEqualsReference(self.feature_image("tar"))

    def test_zstd_mount_equals_umoci(self):
        self.assertMountEqualsReference(self.feature_image("zstd"))

    def test_estargz_mount_equals_umoci(self):
        self.assertMountEqualsReference(self.converted_ref())

    def test_converted_image_still_unpacks_with_umoci(self):
        self.converted_ref()
        bundle = os.path.join(self.mounts.tempdir("umoci"), "bundle")
        rootfs = harness.umoci_unpack(self.converted, self.tag, bundle)
        self.assertTreesEqual(rootfs, self.reference, ignore=ESTARGZ_FORMAT_FILES,
                              context="umoci unpack of the converted image vs of the original")

    def test_converted_layers_are_estargz(self):
        self.converted_ref()
        digest = harness.manifest_digest(self.converted, self.tag)
        manifest = json.loads(self.blob(digest))
        self.assertEqual(len(manifest["layers"]), 3)
        for desc in manifest["layers"]:
            self.assertEqual(desc["mediaType"], imagebuilder.MEDIA_LAYER["gzip"], desc)
            self.assertIn(hostile.TOC_ANNOTATION, desc.get("annotations", {}), desc)
            blob = self.blob(desc["digest"])
            self.assertEqual(len(blob), desc["size"])
            foot = blob[-51:]
            self.assertEqual(foot[:4], b"\x1f\x8b\x08\x04", "footer is not a gzip member with FEXTRA")
            self.assertEqual(foot[12:16], b"SG\x16\x00", "footer extra subfield is not SG/22")
            self.assertEqual(foot[32:38], b"STARGZ", "footer magic")
            toc_offset = int(foot[16:32], 16)
            self.assertLess(toc_offset, len(blob) - 51)

    def blob(self, digest):
        with open(os.path.join(self.converted, "blobs", "sha256", digest.split(":", 1)[1]), "rb") as f:
            return f.read()

    def test_nanosecond_mtimes_kept(self):
        # treecmp falls back to whole seconds when a side has no sub-second mtimes at all; this pins the
        # nanoseconds umoci keeps, for the whole-layer path and the converted (eStargz) path.
        rel = "times/nanoseconds"
        want = os.lstat(os.path.join(self.reference, rel)).st_mtime_ns
        self.assertEqual(want % 10**9, 123_456_789, "umoci itself lost the nanoseconds")
        for ref in (self.ref, self.converted_ref()):
            with self.subTest(ref=ref):
                m = self.mount(ref)
                self.assertEqual(os.lstat(m.path(rel)).st_mtime_ns, want, f"{ref}: mtime of {rel}")

    # -- xattrs ------------------------------------------------------------------------------------

    def test_xattrs_served_and_absent_names_are_enodata(self):
        m = self.mount(self.converted_ref())
        path = m.path("xattrs/user")
        self.assertEqual(os.getxattr(path, "user.foo", follow_symlinks=False), b"bar")
        with self.assertRaises(OSError) as cm:
            os.getxattr(path, "user.absent", follow_symlinks=False)
        self.assertEqual(cm.exception.errno, errno.ENODATA)

    def test_image_without_xattrs_fails_getxattr_in_the_kernel(self):
        # The daemon answers the first getxattr with ENOSYS, and the kernel answers every later one itself
        # (EOPNOTSUPP): overlayfs asks each lower file for trusted.overlay.* xattrs. listxattr stays empty.
        layout, tag = imagebuilder.build(recipes.big())
        m = self.mount(imagebuilder.oci_ref(layout, tag))
        path = m.path(recipes.BIG_PATH)
        self.assertEqual(os.listxattr(path, follow_symlinks=False), [])
        for name in ("user.absent", "trusted.overlay.origin", "security.capability"):
            with self.assertRaises(OSError) as cm:
                os.getxattr(path, name, follow_symlinks=False)
            self.assertEqual(cm.exception.errno, errno.EOPNOTSUPP, name)
        self.assertTrue(m.daemon_alive())

    # -- laziness and sharing ----------------------------------------------------------------------

    def test_small_read_fetches_only_some_chunks(self):
        m = self.mount(self.converted_ref())
        small = harness.bounded_read(m.path(recipes.SMALL_PATH))
        self.assertTrue(small["ok"], small)
        after_small = harness.dir_allocated_bytes(m.cache_dir)
        full = harness.bounded_read(m.path(recipes.RANDOM_PATH), timeout=300)
        self.assertTrue(full["ok"], full)
        grown = harness.wait_for(
            lambda: (harness.dir_allocated_bytes(m.cache_dir) - after_small >= recipes.RANDOM_SIZE * 0.9
                     and harness.dir_allocated_bytes(m.cache_dir)), 60,
            f"the cache to hold the {recipes.RANDOM_SIZE >> 20} MiB just read")
        self.assertLess(after_small, recipes.RANDOM_SIZE // 4,
                        f"after one small read the cache holds {after_small} bytes; the image has a "
                        f"{recipes.RANDOM_SIZE >> 20} MiB incompressible file nobody read (not lazy?)")
        self.assertGreater(grown, after_small)

    def test_two_mounts_share_one_cache(self):
        cache = self.mounts.tempdir("shared-cache")
        ref = self.converted_ref()
        first, second = self.mount(ref, cache_dir=cache), self.mount(ref, cache_dir=cache)
        results = {}

        def compare(m):
            results[m.mountpoint] = treecmp.compare(m.mountpoint, self.reference)
        threads = [threading.Thread(target=compare, args=(m,)) for m in (first, second)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for mp, res in results.items():
            self.assertTrue(res.equal, f"{mp} (shared cache) vs umoci:\n{res.report(50)}")
        self.assertTrue(first.daemon_alive() and second.daemon_alive())

    # -- lifecycle ---------------------------------------------------------------------------------

    def test_writes_fail_with_erofs(self):
        m = self.mount(self.ref)
        for attempt in (lambda: open(m.path("new-file"), "wb"), lambda: open(m.path("etc/passwd"), "r+b"),
                        lambda: os.mkdir(m.path("new-dir")), lambda: os.unlink(m.path("etc/passwd"))):
            with self.assertRaises(OSError) as cm:
                attempt()
            self.assertEqual(cm.exception.errno, errno.EROFS, cm.exception)

    def test_umount_leaves_mountpoint_empty(self):
        m = self.mount(self.ref)
        self.assertTrue(os.listdir(m.mountpoint))
        proc = harness.run_lazyfs(["umount", m.mountpoint], timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertFalse(harness.fuse_mount_count(m.mountpoint), "still mounted after `lazyfs umount`")
        self.assertEqual(os.listdir(m.mountpoint), [])
        harness.wait_for(lambda: not any(harness.pid_alive(p) for p in m.pids), 30, "the daemon to exit")

    def test_umount_refuses_what_is_not_a_lazyfs_mount(self):
        # As root, umount2 would take anything: a tmpfs, even /proc.
        target = self.mounts.tempdir("tmpfs")
        subprocess.run(["mount", "-t", "tmpfs", "lazyfs-test", target], check=True, timeout=30)
        try:
            proc = harness.run_lazyfs(["umount", target], timeout=60)
            self.assertEqual(proc.returncode, 1, proc.stderr)
            self.assertIn("is a tmpfs mount, not a lazyfs one", proc.stderr)
            self.assertTrue([mp for mp, fstype, _ in harness.mounts() if mp == os.path.realpath(target)
                             and fstype == "tmpfs"], "the tmpfs was unmounted")
        finally:
            subprocess.run(["umount", target], timeout=30)
        proc = harness.run_lazyfs(["umount", "/proc"], timeout=60)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("not a lazyfs one", proc.stderr)
        self.assertTrue(os.path.exists("/proc/self/mountinfo"))
        proc = harness.run_lazyfs(["umount", self.mounts.tempdir("plain")], timeout=60)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("not a mount point", proc.stderr)

    def test_second_mount_on_a_mountpoint_is_refused(self):
        m = self.mount(self.ref)
        again = harness.run_lazyfs(["mount", "--cache-dir", m.cache_dir, self.ref, m.mountpoint])
        self.assertEqual(again.returncode, 1, again.stderr)
        self.assertIn("is a lazyfs mount already", again.stderr)
        self.assertEqual(harness.fuse_mount_count(m.mountpoint), 1)
        self.assertTrue(m.daemon_alive())
        self.assertTrue(os.listdir(m.mountpoint))

    def test_missing_tag_fails_with_message(self):
        m = self.mounts.mount(imagebuilder.oci_ref(self.layout, "no-such-tag"))
        self.assertNotEqual(m.proc.returncode, 0, m.describe())
        self.assertTrue((m.proc.stderr + m.proc.stdout).strip(), "no error message")
        self.assertIn("no-such-tag", m.proc.stderr + m.proc.stdout + m.log(), "message does not name the tag")
        self.assertFalse(harness.fuse_mount_count(m.mountpoint))
        self.assertEqual(harness.daemon_pids(m.mountpoint), [], "a daemon was left running")


if __name__ == "__main__":
    harness.parse_args()
    harness.main()
