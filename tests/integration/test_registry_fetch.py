"""End-to-end test of fetch/'s registry client against a real docker-registry, driven through the
registry_probe tool (tests/fetch/registry_probe.cc).

    python3 test_registry_fetch.py --probe build/tests/fetch/registry_probe

Needs: docker-registry, skopeo, openssl (Debian packages of the same names); bcrypt from Python's crypt
module (or apache2-utils' htpasswd when crypt is missing).
"""

import argparse
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from registry_harness import Registry, sha256, temp_dir, write_oci_layout  # noqa: E402

PROBE = None


def probe(*args, env=None, check=True):
    """Runs registry_probe; returns (returncode, stdout bytes, stderr text)."""
    full_env = dict(os.environ)
    # Keep the developer's own auth files out of the test.
    full_env.update({"REGISTRY_AUTH_FILE": "", "XDG_RUNTIME_DIR": "", "HOME": "/nonexistent"})
    full_env.update(env or {})
    result = subprocess.run([PROBE, *args], capture_output=True, env=full_env, timeout=120)
    stderr = result.stderr.decode(errors="replace")
    if check and result.returncode != 0:
        raise AssertionError(f"registry_probe {' '.join(args)} failed ({result.returncode}): {stderr}")
    return result.returncode, result.stdout, stderr


def layer_files(seed):
    # Incompressible content makes a layer big enough that ranges land deep inside it.
    rng = __import__("random").Random(seed)
    return [{"etc/hello.txt": f"hello {seed}\n".encode() * 100,
             "usr/lib/blob.bin": bytes(rng.getrandbits(8) for _ in range(300_000))}]


class RegistryFetchTest(unittest.TestCase):
    def test_resolve_range_stream_head_over_plain_http(self):
        with temp_dir() as d, Registry() as reg:
            image = write_oci_layout(d + "/layout", "v1", layer_files(1))
            reg.push_layout(d + "/layout", "v1", "lib/app:v1")
            ref = f"docker://{reg.host}/lib/app:v1"

            _, out, _ = probe("--insecure", "resolve", ref)
            lines = out.decode().splitlines()
            self.assertEqual(lines[0], "manifest " + image.manifest_digest)
            self.assertEqual(lines[1], "config " + sha256(image.config))
            layer = image.layers[0]
            self.assertEqual(lines[2], f"layer {sha256(layer)} {len(layer)}")

            # By digest too, and the manifest bytes come back exactly.
            _, out, _ = probe("--insecure", "get-manifest", f"docker://{reg.host}/lib/app@{image.manifest_digest}")
            self.assertIn(b"media_type application/vnd.oci.image.manifest.v1+json", out)
            self.assertTrue(out.endswith(image.manifest + b"\n"))

            for offset, length in [(0, 1), (12345, 4096), (len(layer) - 10, 10), (100, len(layer) - 100)]:
                _, got, _ = probe("--insecure", "get-range", ref, sha256(layer), str(offset), str(length))
                self.assertEqual(got, layer[offset:offset + length], (offset, length))

            code, _, err = probe("--insecure", "get-range", ref, sha256(layer), str(len(layer) + 5), "10", check=False)
            self.assertEqual(code, 1)
            self.assertIn("corrupt", err)

            _, got, _ = probe("--insecure", "get-blob", ref, sha256(layer))
            self.assertEqual(got, layer)

            _, out, _ = probe("--insecure", "head", ref, sha256(layer))
            self.assertEqual(out.decode().strip(), str(len(layer)))
            _, out, _ = probe("--insecure", "head", ref, sha256(b"absent"))
            self.assertEqual(out.decode().strip(), "absent")

            code, _, err = probe("--insecure", "get-manifest", f"docker://{reg.host}/lib/app:nope", check=False)
            self.assertEqual(code, 1)
            self.assertIn("not found", err)

            # Not listed as insecure: https to a plain-http registry fails, without retrying forever.
            code, _, err = probe("--attempts", "1", "get-manifest", ref, check=False)
            self.assertEqual(code, 1)

    def test_basic_auth(self):
        with temp_dir() as d, Registry(users={"alice": "s3cret-pw"}) as reg:
            image = write_oci_layout(d + "/layout", "v1", layer_files(2))
            reg.push_layout(d + "/layout", "v1", "private/app:v1")
            ref = f"docker://{reg.host}/private/app:v1"

            _, out, _ = probe("--insecure", "--user", "alice", "--password", "s3cret-pw", "resolve", ref)
            self.assertIn(image.manifest_digest, out.decode())

            code, _, err = probe("--insecure", "--user", "alice", "--password", "wrong", "resolve", ref, check=False)
            self.assertEqual(code, 1)
            self.assertIn("permission", err)
            self.assertNotIn("wrong", err.replace("wrong credentials", ""))

            code, _, err = probe("--insecure", "resolve", ref, check=False)
            self.assertEqual(code, 1)
            self.assertIn("permission", err)

            # Credentials from $REGISTRY_AUTH_FILE (containers-auth.json format).
            import base64
            auth_file = os.path.join(d, "auth.json")
            with open(auth_file, "w") as f:
                json.dump({"auths": {reg.host: {"auth": base64.b64encode(b"alice:s3cret-pw").decode()}}}, f)
            layer = image.layers[0]
            _, got, _ = probe("--insecure", "get-range", ref, sha256(layer), "1000", "777",
                              env={"REGISTRY_AUTH_FILE": auth_file})
            self.assertEqual(got, layer[1000:1777])

    def test_tls_with_test_ca(self):
        with temp_dir() as d, Registry(tls=True) as reg:
            image = write_oci_layout(d + "/layout", "v1", layer_files(3))
            reg.push_layout(d + "/layout", "v1", "secure/app:v1")
            ref = f"docker://{reg.host}/secure/app:v1"

            _, out, _ = probe("--ca-file", reg.ca_file, "resolve", ref)
            self.assertIn(image.manifest_digest, out.decode())
            layer = image.layers[0]
            _, got, _ = probe("--ca-file", reg.ca_file, "get-range", ref, sha256(layer), "5", "50")
            self.assertEqual(got, layer[5:55])

            # Without the CA the certificate does not verify, and that is not retried.
            code, _, err = probe("resolve", ref, check=False)
            self.assertEqual(code, 1)
            self.assertIn("TLS", err)

    def test_mirror_first_then_origin(self):
        with temp_dir() as d, Registry() as origin, Registry() as mirror:
            image = write_oci_layout(d + "/layout", "v1", layer_files(4))
            mirror.push_layout(d + "/layout", "v1", "lib/app:v1")  # only the mirror has it
            ref = f"docker://{origin.host}/lib/app:v1"
            code, _, _ = probe("--insecure", "resolve", ref, check=False)
            self.assertEqual(code, 1)
            _, out, _ = probe("--insecure", "--mirror", f"http://{mirror.host}", "resolve", ref)
            self.assertIn(image.manifest_digest, out.decode())

            # A dead mirror falls through to the origin.
            origin.push_layout(d + "/layout", "v1", "lib/app:v1")
            dead = "http://127.0.0.1:1"
            _, out, _ = probe("--insecure", "--mirror", dead, "resolve", ref)
            self.assertIn(image.manifest_digest, out.decode())

    def test_push_then_skopeo_reads_it_back(self):
        with temp_dir() as d, Registry(users={"bob": "pw"}) as reg:
            image = write_oci_layout(d + "/layout", "v2", layer_files(5) + [{"second/layer": b"x" * 5000}])
            ref = f"docker://{reg.host}/pushed/app:v2"
            creds = ["--insecure", "--user", "bob", "--password", "pw"]
            _, _, err = probe(*creds, "push", d + "/layout", "v2", ref)
            self.assertIn("uploaded blob", err)

            self.assertEqual(reg.inspect_raw("pushed/app:v2"), image.manifest)
            reg.pull_layout("pushed/app:v2", d + "/back", "v2")
            for blob in [image.config, *image.layers, image.manifest]:
                path = os.path.join(d, "back", "blobs", "sha256", sha256(blob).split(":")[1])
                with open(path, "rb") as f:
                    self.assertEqual(f.read(), blob)

            # A second push finds every blob present and uploads nothing.
            _, _, err = probe(*creds, "push", d + "/layout", "v2", ref)
            self.assertNotIn("uploaded blob", err)
            self.assertIn("already present", err)

            # What we pushed, our client reads.
            _, out, _ = probe(*creds, "resolve", ref)
            self.assertIn(image.manifest_digest, out.decode())


def main():
    global PROBE
    parser = argparse.ArgumentParser()
    parser.add_argument("--probe", required=True, help="path to the registry_probe executable")
    args, rest = parser.parse_known_args()
    PROBE = os.path.abspath(args.probe)
    harness.main([sys.argv[0], *rest])


if __name__ == "__main__":
    main()
