#!/usr/bin/env python3
"""The README's two set-up commands on a host without sudo: their privilege step (tools/require-root.sh).

    python3 test_setup_commands.py [unittest args]

Needs no lazyfs, no network and no apt. The commands are read from the README's first code block and run
as written, from a copy of tools/demo.sh, tests/run.sh and the helper in a world-readable temp tree (the
checkout may sit under a 0700 home), with a PATH of symlinks to bash and dirname only: no sudo, no
apt-get. The copy has no tools/install-deps.sh, so a script that went past its privilege step by mistake
fails at once instead of installing anything.

Not being root is real: as root the non-root cases run under `setpriv --reuid 65534 --regid 65534
--clear-groups`; as another user they run as that user (and the root cases are skipped). A fake `sudo`
records its arguments and effective uid and exits with the status the test chose: with 0 the script must
stop there (it was replaced by sudo, not merely calling it), with another the script must exit with it.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COPIED = ["tools/demo.sh", "tests/run.sh", "tools/require-root.sh"]
NOBODY = 65534
TIMEOUT = 30  # seconds for one run of a script's privilege step


def readme_commands():
    """The commands of the README's first code block, comments stripped."""
    with open(os.path.join(REPO, "README.md")) as f:
        text = f.read()
    block = text.split("```", 2)[1]
    lines = block.splitlines()[1:]  # drop the fence's language tag
    return [line.split("#", 1)[0].strip() for line in lines if line.strip()]


class SetupCommandsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.commands = readme_commands()
        cls.bash = shutil.which("bash")
        cls.setpriv = shutil.which("setpriv")
        if os.geteuid() == 0 and not cls.setpriv:
            raise AssertionError("running as root, but no setpriv (util-linux) to drop to uid 65534")

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="setup-commands-test.")
        os.chmod(self.tmp, 0o755)
        self.tree = os.path.join(self.tmp, "repo")
        for rel in COPIED:
            os.makedirs(os.path.dirname(os.path.join(self.tree, rel)), exist_ok=True)
            shutil.copy2(os.path.join(REPO, rel), os.path.join(self.tree, rel))
        self.assertFalse(os.path.exists(os.path.join(self.tree, "tools/install-deps.sh")))
        self.bin = os.path.join(self.tmp, "bin")
        os.mkdir(self.bin)
        for tool in ("bash", "dirname"):
            os.symlink(shutil.which(tool), os.path.join(self.bin, tool))
        self.records = os.path.join(self.tmp, "records")
        os.mkdir(self.records)
        os.chmod(self.records, 0o777)  # the fake sudo writes here as uid 65534

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def add_fake_sudo(self):
        path = os.path.join(self.bin, "sudo")
        with open(path, "w") as f:
            f.write(f"#!{self.bash}\n"
                    f"printf '%s\\0' \"$@\" > {self.records}/args\n"
                    f"echo \"$EUID\" > {self.records}/euid\n"
                    f"exit $(< {self.records}/status)\n")
        os.chmod(path, 0o755)

    def run_command(self, command, args=(), as_root=True, extra_env=None):
        """Runs a README command (relative to the tree) with only our PATH and extra_env; as_root=False
        drops to uid 65534 when we are root."""
        env = {"PATH": self.bin, **(extra_env or {})}
        argv = [command, *args]
        if not as_root and os.geteuid() == 0:
            argv = [self.setpriv, "--reuid", str(NOBODY), "--regid", str(NOBODY), "--clear-groups", "--", *argv]
        return subprocess.run(argv, cwd=self.tree, env=env, capture_output=True, text=True, timeout=TIMEOUT)

    def require_root(self):
        if os.geteuid() != 0:
            self.skipTest("the root cases need root")

    def test_readme_starts_with_the_two_commands(self):
        self.assertEqual(self.commands, ["tools/demo.sh", "tests/run.sh"])

    def test_root_stops_after_the_check_when_asked(self):
        self.require_root()
        self.add_fake_sudo()  # there, but root must not use it
        for command in self.commands:
            with self.subTest(command=command):
                res = self.run_command(command, extra_env={"LAZYFS_PRIVILEGE_CHECK_ONLY": "1"})
                self.assertEqual(res.returncode, 0, res.stderr)
                self.assertIn("stopping after the privilege check", res.stderr)
                self.assertEqual(res.stdout, "")
                self.assertFalse(os.path.exists(os.path.join(self.records, "args")), "root went through sudo")

    def test_root_goes_on_past_the_check(self):
        self.require_root()
        for command in self.commands:
            with self.subTest(command=command):
                res = self.run_command(command)
                # The next step is install-deps.sh, which the copied tree lacks: proof the script went on.
                self.assertEqual(res.returncode, 127, res.stderr)
                self.assertIn("tools/install-deps.sh: No such file or directory", res.stderr)
                self.assertNotIn("sudo", res.stderr)

    def test_non_root_without_sudo_says_run_as_root(self):
        for command in self.commands:
            with self.subTest(command=command):
                res = self.run_command(command, ["--flag"], as_root=False,
                                       extra_env={"LAZYFS_PRIVILEGE_CHECK_ONLY": "1"})
                self.assertEqual(res.returncode, 1, res.stderr)
                self.assertIn("no sudo", res.stderr)
                self.assertIn(f"run it as root: {command}", res.stderr)
                self.assertEqual(res.stdout, "")
                self.assertNotIn("install-deps", res.stderr)

    def test_non_root_reexecs_through_sudo_with_the_same_arguments(self):
        self.add_fake_sudo()
        args = ["one two", "--suite", "unit", ""]
        env = {"CI": "true", "LAZYFS_BUILD_DIR": "/tmp/b d", "UNRELATED": "x"}
        for command in self.commands:
            for status in (0, 42):
                with self.subTest(command=command, sudo_status=status):
                    self.check_reexec(command, args, env, status)

    def check_reexec(self, command, args, env, status):
        for name in ("args", "euid"):
            if os.path.exists(os.path.join(self.records, name)):
                os.remove(os.path.join(self.records, name))
        with open(os.path.join(self.records, "status"), "w") as f:
            f.write(f"{status}\n")
        res = self.run_command(command, args, as_root=False, extra_env=env)
        self.assertEqual(res.returncode, status, res.stderr)
        self.assertEqual(res.stdout, "")
        self.assertNotIn("install-deps", res.stderr)
        with open(os.path.join(self.records, "euid")) as f:
            self.assertEqual(f.read().strip(), str(NOBODY if os.geteuid() == 0 else os.geteuid()))
        with open(os.path.join(self.records, "args")) as f:
            argv = f.read().split("\0")[:-1]
        self.assertEqual(argv[argv.index("--") + 1:],
                         [os.path.join(self.bin, "bash"),  # $BASH: the bash running the script
                          os.path.join(os.path.realpath(self.tree), command), *args])
        preserve = [a for a in argv[:argv.index("--")] if a.startswith("--preserve-env=")]
        self.assertEqual(len(preserve), 1, argv)
        self.assertEqual(sorted(preserve[0].split("=", 1)[1].split(",")),
                         ["CI", "LAZYFS_BUILD_DIR"])


if __name__ == "__main__":
    harness.main()
