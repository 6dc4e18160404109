"""`lazyfs pkg show` against a real local index (nginx on 127.0.0.1 serving wheels the test makes):

  - PEP 503 HTML and PEP 691 JSON pages, each with PEP 658 metadata files: the newest final release is
    chosen (a newer pre-release and a newer yanked file are not), and its METADATA comes from the
    metadata file in one request after the page;
  - the same index without metadata files: METADATA is read out of the wheel with Range requests (a
    HEAD, then at most three ranges), far fewer bytes than the wheel;
  - a second show on the same cache asks only for the page (answered 304) and reads nothing else;
  - hostile and unhelpful indexes: a metadata file whose hash is wrong, a project with only an sdist, a
    wheel for another platform, an unknown project: exit 1 with a message naming the cause.
"""

import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from package_index import IndexTestCase  # noqa: E402

BIG = 3 << 20  # an incompressible member in front of the dist-info, so a whole-wheel read would show


class PkgIndexTest(IndexTestCase):
    @classmethod
    def fill_index(cls, index):
        index.add_wheel("Demo.Pkg", "1.0", requires=["six"])
        cls.wheel = index.add_wheel("Demo.Pkg", "1.2", requires=["six>=1.10", "tomli; python_version < \"3.11\"",
                                                                 "rich; extra == \"fancy\""],
                                    requires_python=">=3.8", extras=["fancy"], payload_bytes=BIG)
        index.add_wheel("Demo.Pkg", "2.0rc1")
        index.add_wheel("Demo.Pkg", "1.3", yanked="broken build")
        index.add_wheel("Demo.Pkg", "1.4", requires_python=">=3.13")
        index.add_wheel("liar", "1.0", wrong_metadata_hash=True)
        index.add_sdist("onlysource", "1.0")
        index.add_wheel("native", "1.0", tag="cp311-cp311-macosx_11_0_arm64")

    def setUp(self):
        self.cache = tempfile.mkdtemp(prefix="cache.", dir=self.dir)
        self.server.clear_access_log()

    def show(self, requirement, flavour="html", ok=True, extra=(), python="3.11"):
        proc = harness.run_lazyfs(["pkg", "show", "--json", "--index-url", self.server.index_url(flavour),
                                   "--python-version", python, "--cache-dir", self.cache, *extra, requirement],
                                  timeout=120)
        if not ok:
            self.assertEqual(proc.returncode, 1, proc.stdout + proc.stderr)
            return proc.stderr
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return json.loads(proc.stdout)

    def assertNewestFinal(self, shown):
        self.assertEqual(shown["name"], "Demo.Pkg")
        self.assertEqual(shown["version"], "1.2")  # not 2.0rc1 (pre), 1.3 (yanked), 1.4 (Requires-Python)
        self.assertEqual(shown["requires_python"], ">=3.8")
        self.assertEqual(shown["provides_extra"], ["fancy"])
        self.assertIn("six>=1.10", shown["requires_dist"])
        self.assertEqual(shown["file"], "Demo_Pkg-1.2-py3-none-any.whl")

    def test_html_index_with_metadata_files(self):
        shown = self.show("demo-pkg")
        self.assertNewestFinal(shown)
        self.assertEqual(shown["metadata_source"], "metadata file")
        paths = [r[1] for r in self.server.requests()]
        self.assertEqual(paths, ["/html/demo-pkg/", "/files/Demo_Pkg-1.2-py3-none-any.whl.metadata"])

    def test_json_index_with_metadata_files(self):
        shown = self.show("Demo_Pkg>=1.1", flavour="json")
        self.assertNewestFinal(shown)
        self.assertEqual(shown["metadata_source"], "metadata file")
        self.assertEqual(len(self.server.requests()), 2, self.server.requests())

    def test_index_without_metadata_files_reads_the_wheel_by_ranges(self):
        shown = self.show("demo.pkg", flavour="nometa")
        self.assertNewestFinal(shown)
        self.assertEqual(shown["metadata_source"], "range reads of the wheel")
        requests = self.server.requests()
        wheel = [r for r in requests if r[1].endswith(".whl")]
        self.assertTrue(all(r[0] == "HEAD" or r[4] for r in wheel), f"an unranged GET of the wheel: {wheel}")
        self.assertLessEqual(len([r for r in wheel if r[0] == "GET"]), 3, wheel)
        fetched = sum(r[3] for r in wheel)
        size = os.path.getsize(self.wheel)
        print(f"  lazy METADATA: {len(wheel)} wheel requests, {fetched} of {size} bytes", file=sys.stderr)
        self.assertLess(fetched, size // 20)

    def test_second_show_asks_only_for_the_page(self):
        for flavour in ("html", "nometa"):
            self.show("demo-pkg", flavour=flavour)
            self.server.clear_access_log()
            shown = self.show("demo-pkg", flavour=flavour)
            self.assertEqual(shown["metadata_source"], "cache")
            self.assertEqual(shown["index"]["not_modified"], 1)
            self.assertEqual([(r[1], r[2]) for r in self.server.requests()], [(f"/{flavour}/demo-pkg/", 304)])

    def test_pins_prereleases_and_yanked(self):
        self.assertEqual(self.show("demo-pkg==1.3")["version"], "1.3")  # a yanked file answers an exact pin
        self.assertEqual(self.show("demo-pkg", extra=["--pre"])["version"], "2.0rc1")
        self.assertEqual(self.show("demo-pkg>=1.5")["version"], "2.0rc1")  # the only match may be a pre-release
        self.assertEqual(self.show("demo-pkg", python="3.13")["version"], "1.4")

    def test_bad_indexes_and_projects_are_clear_errors(self):
        err = self.show("liar", ok=False)
        self.assertIn("hashes to sha256:", err)
        self.assertIn("liar-1.0-py3-none-any.whl.metadata", err)
        err = self.show("onlysource", ok=False)
        self.assertIn("never builds", err)
        err = self.show("native", ok=False)
        self.assertIn("native-1.0-cp311-cp311-macosx_11_0_arm64.whl", err)
        self.assertIn("--platform", err)
        err = self.show("no-such-project", ok=False)
        self.assertIn("no-such-project", err)
        self.assertIn("--index-url", err)
        err = self.show("demo-pkg @ https://example.invalid/x.whl", ok=False)
        self.assertIn("URL", err)


if __name__ == "__main__":
    harness.parse_args()
    harness.main()
