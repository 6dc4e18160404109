"""The harness's exit codes, which meson reads: a program whose tests were all skipped exits 77 (SKIP), not 0
(OK); with $CI set any skip fails it; failures fail it; a real pass is 0. Needs nothing but python3."""

import os
import subprocess
import sys
import tempfile
import textwrap
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness  # noqa: E402

PROGRAMS = {
    "all_skipped": """
        class T(unittest.TestCase):
            @classmethod
            def setUpClass(cls):
                raise unittest.SkipTest("tool missing")
            def test_a(self):
                pass
            def test_b(self):
                pass
    """,
    "one_skipped": """
        class T(unittest.TestCase):
            def test_runs(self):
                self.assertEqual(1 + 1, 2)
            def test_skips(self):
                self.skipTest("zstd missing")
    """,
    "method_skips_only": """
        class T(unittest.TestCase):
            def test_skips(self):
                self.skipTest("zstd missing")
    """,
    "passes": """
        class T(unittest.TestCase):
            def test_runs(self):
                self.assertTrue(True)
    """,
    "fails": """
        class T(unittest.TestCase):
            def test_fails(self):
                self.assertEqual(1, 2)
    """,
}


class HarnessExitTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="lazyfs-harness-test-")
        for name, body in PROGRAMS.items():
            with open(os.path.join(cls.dir, name + ".py"), "w") as f:
                f.write(f"import sys, unittest\nsys.path.insert(0, {HERE!r})\nimport harness\n")
                f.write(textwrap.dedent(body))
                f.write("\nif __name__ == '__main__':\n    harness.main()\n")

    @classmethod
    def tearDownClass(cls):
        subprocess.run(["rm", "-rf", cls.dir], check=False)

    def exit_code(self, name, ci):
        env = dict(os.environ)
        env.pop("CI", None)
        if ci:
            env["CI"] = "true"
        proc = subprocess.run([sys.executable, os.path.join(self.dir, name + ".py")], env=env,
                              capture_output=True, text=True, timeout=60)
        return proc.returncode, proc.stderr

    def test_everything_skipped_is_meson_skip(self):
        self.assertEqual(self.exit_code("all_skipped", ci=False)[0], harness.SKIPPED_EXIT)
        self.assertEqual(self.exit_code("method_skips_only", ci=False)[0], harness.SKIPPED_EXIT)

    def test_some_skipped_passes_outside_ci(self):
        self.assertEqual(self.exit_code("one_skipped", ci=False)[0], 0)

    def test_any_skip_fails_under_ci_and_says_why(self):
        for name in ("all_skipped", "one_skipped"):
            code, err = self.exit_code(name, ci=True)
            self.assertEqual(code, 1, name)
            self.assertIn("skipped with CI set", err)
            self.assertTrue("tool missing" in err or "zstd missing" in err, err)

    def test_pass_and_fail(self):
        self.assertEqual(self.exit_code("passes", ci=True)[0], 0)
        self.assertEqual(self.exit_code("fails", ci=False)[0], 1)


if __name__ == "__main__":
    harness.main()
