"""Debian's pip as the reference resolver: `pip install --dry-run --ignore-installed --report` against an
index, for the host's own interpreter (Debian's /usr/bin/python3: its tags, its Python version), which is
the target lazyfs is given too. Only binary wheels, no cache, nothing installed, no pip configuration.

Give pip the index flavour without PEP 658 metadata files (`nometa`): Debian's pip 23.0.1 compares a
metadata file's Name with the requested name without normalising either (pypa/pip#12038, fixed in 23.2),
so `flask` against a METADATA saying `Flask` fails there. Without metadata files pip downloads each wheel
it considers, and checks names properly.

    result = pip_resolve(index_url, ["flask", "requests>=2"])
    result.ok, result.pins (canonical name -> version), result.seconds, result.stderr
"""

import json
import os
import re
import subprocess
import tempfile
import time

PIP_PYTHON = "/usr/bin/python3"  # Debian's, with pip 23.0.1 (python3-pip)


def canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def host_python_version():
    out = subprocess.run([PIP_PYTHON, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def pip_available():
    return subprocess.run([PIP_PYTHON, "-m", "pip", "--version"], capture_output=True).returncode == 0


class PipResult:
    def __init__(self, ok, pins, seconds, stderr):
        self.ok, self.pins, self.seconds, self.stderr = ok, pins, seconds, stderr


def pip_resolve(index_url, requirements, extra_args=(), timeout=600):
    with tempfile.TemporaryDirectory(prefix="pip-report.") as tmp:
        report = os.path.join(tmp, "report.json")
        cmd = [PIP_PYTHON, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--report", report,
               "--quiet", "--no-cache-dir", "--disable-pip-version-check", "--no-input", "--only-binary=:all:",
               "--index-url", index_url, *extra_args, *requirements]
        # No pip configuration of this host (PIP_FIND_LINKS and friends, /etc/pip.conf) may take part.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
        env.update(PIP_CONFIG_FILE=os.devnull, HOME=tmp)
        started = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, cwd=tmp)
        seconds = time.monotonic() - started
        if proc.returncode != 0:
            return PipResult(False, {}, seconds, proc.stderr)
        with open(report) as f:
            data = json.load(f)
        pins = {canonical(i["metadata"]["name"]): i["metadata"]["version"] for i in data["install"]}
        return PipResult(True, pins, seconds, proc.stderr)
