#!/usr/bin/env python3
"""lazyfs must survive hostile images: bounded EIO for damaged files, everything else keeps working.

Run as root:  python3 test_bad_input.py --lazyfs /path/to/lazyfs

One test per case in hostile.CASES (each a small OCI layout: a good plain base layer plus one damaged
layer). What each case must produce is decided in hostile.py next to the case (`Case.expect`):

  ok           mounts; equal to `umoci unpack` of the same image (format files aside): the writer's
               well-formed eStargz and duplicate entries (the later one wins, as umoci does);
  eio          mounts; each damaged file reads as EIO (errno 5), within READ_TIMEOUT; good files read
               correctly, before and after; the daemon is alive afterwards; the log has one line naming
               the file, the layer (first 12 hex digits of its digest) and the cause;
  fallback     mounts and every file reads correctly (lazyfs ignored the damaged index and read the layer
               as plain, digest-verified tar+gzip) and the log says why; accepted where refusing the mount
               or answering EIO for the damaged file is equally right;
  sanitized    mounts; good files correct; no name containing '..' or '/' escapes (entries are dropped or
               re-rooted under the mount, as umoci does);
  mount_fails  the whole image is unusable (manifest, config or a layer's index unreadable, a layer that
               cannot be listed): `lazyfs mount` exits non-zero with a message matching the case's cause,
               nothing is mounted and no daemon is left.

Every read happens in a child process with a timeout, so a hang fails instead of hanging CI.
"""

import errno
import os
import re
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import hostile  # noqa: E402
import treecmp  # noqa: E402
from test_mount_union import ESTARGZ_FORMAT_FILES  # noqa: E402


class BadInputTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        harness.require_environment()
        cls.imagedir = tempfile.mkdtemp(prefix="lazyfs-it-hostile.")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.imagedir, ignore_errors=True)

    def setUp(self):
        self.mounts = harness.MountSet()

    def tearDown(self):
        self.mounts.cleanup()

    # -- checks ------------------------------------------------------------------------------------

    def assertGoodFiles(self, m, files, when):
        for rel, data in files.items():
            got = harness.bounded_read(m.path(rel))
            self.assertTrue(got.get("ok"), f"{when}: good file {rel} failed: {got}\n{m.describe()}")
            self.assertEqual(got["sha256"], harness.sha256_hex(data), f"{when}: good file {rel} wrong bytes")

    def assertLogLine(self, m, case, rel, layer_digest):
        """One log line names the file, the layer and a cause matching case.cause."""
        name = os.path.basename(rel)
        layer = layer_digest.split(":", 1)[1][:12] if layer_digest else ""
        lines = [l for l in m.log().splitlines() if name in l]
        self.assertTrue(lines, f"no log line names {rel}\nlog tail:\n{m.log_tail()}")
        with_cause = [l for l in lines if re.search(case.cause, l, re.I)]
        self.assertTrue(with_cause, f"log lines naming {rel} give no cause matching /{case.cause}/:\n"
                                    + "\n".join(lines[-5:]))
        self.assertTrue([l for l in with_cause if layer in l],
                        f"log lines naming {rel} and the cause do not name layer {layer}:\n"
                        + "\n".join(with_cause[-5:]))

    def check_eio(self, case, m, layer_digest):
        self.assertGoodFiles(m, case.good, "before the bad reads")
        for rel in case.bad:
            got = harness.bounded_read(m.path(rel))
            self.assertFalse(got.get("timeout"), f"read of {rel} hung (> {harness.READ_TIMEOUT}s)")
            self.assertEqual(got.get("errno"), errno.EIO, f"read of damaged {rel}: expected EIO, got {got}")
        for rel, (offset, length, data) in case.partial.items():
            got = harness.bounded_read(m.path(rel), offset, length)
            self.assertTrue(got.get("ok"), f"undamaged range {offset}+{length} of {rel} failed: {got}")
            self.assertEqual(got["sha256"], harness.sha256_hex(data))
        self.assertGoodFiles(m, case.good, "after the bad reads")
        self.assertTrue(m.daemon_alive(), f"daemon died\n{m.describe()}")
        for rel in case.bad:
            self.assertLogLine(m, case, rel, layer_digest)

    def check_fallback(self, case, m, layer_digest):
        self.assertGoodFiles(m, {**case.good, **case.expected}, "fallback (layer read as plain tar+gzip)")
        self.assertTrue(m.daemon_alive())
        layer = layer_digest.split(":", 1)[1][:12]
        said = [l for l in m.log().splitlines() if layer in l and re.search(case.cause, l, re.I)]
        self.assertTrue(said, f"no log line says why layer {layer} was read whole (/{case.cause}/)\n"
                              f"{m.log_tail()}")

    def check_sanitized(self, case, m):
        self.assertGoodFiles(m, case.good, "image with '..'/absolute names")
        parent = os.path.dirname(m.mountpoint)
        for name in hostile.ESCAPE_NAMES:
            self.assertFalse(os.path.lexists(os.path.join(parent, name)), f"{name} escaped the mount")
        for dirpath, dirnames, filenames in os.walk(m.mountpoint):
            for n in dirnames + filenames:
                self.assertNotIn(n, ("..", "."), f"entry named {n!r} in {dirpath}")
                self.assertNotIn("/", n)
        self.assertTrue(m.daemon_alive())

    def check_ok(self, case, m, layout):
        bundle = os.path.join(self.mounts.tempdir("umoci"), "bundle")
        reference = harness.umoci_unpack(layout, hostile.TAG, bundle)
        res = treecmp.compare(m.mountpoint, reference, ignore=ESTARGZ_FORMAT_FILES)
        self.assertTrue(res.equal, f"{case.name}: mount vs umoci unpack\n{res.report(50)}\n{m.log_tail()}")

    def check_mount_failed(self, case, m, layer_digest):
        message = m.proc.stderr + m.proc.stdout
        if case.names_layer:
            layer = layer_digest.split(":", 1)[1][:12]
            self.assertIn(layer, message + m.log(), f"failure message does not name layer {layer}:\n{message}")
        self.assertTrue(message.strip(), "mount failed without a message on stderr")
        self.assertTrue(re.search(case.cause, message + m.log(), re.I),
                        f"failure message does not match /{case.cause}/:\n{message}")
        self.assertFalse(harness.fuse_mount_count(m.mountpoint), "left mounted after a failed mount")
        self.assertEqual(harness.daemon_pids(m.mountpoint), [], "daemon left running after a failed mount")

    # -- driver ------------------------------------------------------------------------------------

    def run_case(self, case):
        layout = os.path.join(self.imagedir, case.name)
        if os.path.exists(layout):
            shutil.rmtree(layout)
        layer_digest = case.build(layout)
        m = self.mounts.mount(f"oci:{layout}:{hostile.TAG}", name=case.name)
        if m.ok:
            self.assertTrue(harness.is_mounted(m.mountpoint), f"mount returned 0 but is not live\n{m.describe()}")
            mounted = [e for e in case.expect if e != "mount_fails"]
            self.assertTrue(mounted, f"{case.name} ({case.doc}): the mount should have failed")
            outcome = mounted[0]
            if set(mounted) == {"eio", "fallback"}:  # which one lazyfs chose shows in the bad file
                probe = harness.bounded_read(m.path(case.bad[0]))
                outcome = "fallback" if probe.get("ok") else "eio"
        else:
            outcome = "mount_fails"
            self.assertIn(outcome, case.expect,
                          f"{case.name} ({case.doc}): mount failed, expected {case.expect}\n{m.describe()}")
        print(f"  {case.name}: outcome {outcome}", file=sys.stderr)
        if outcome == "mount_fails":
            self.check_mount_failed(case, m, layer_digest)
        elif outcome == "eio":
            self.check_eio(case, m, layer_digest)
        elif outcome == "fallback":
            self.check_fallback(case, m, layer_digest)
        elif outcome == "sanitized":
            self.check_sanitized(case, m)
        elif outcome == "ok":
            self.check_ok(case, m, layout)


def _add_case_tests():
    for case in hostile.CASES:
        def test(self, case=case):
            self.run_case(case)
        test.__doc__ = f"{case.name}: {case.doc} -> {' or '.join(case.expect)}"
        setattr(BadInputTest, "test_" + case.name.replace("-", "_"), test)


_add_case_tests()

if __name__ == "__main__":
    harness.parse_args()
    harness.main()
