"""Build HelloBench images once (cached under $LAZYFS_TEST_CACHE): plain tar+gzip OCI layouts and their
eStargz conversions, via tests/integration/debian_image.py.

    python3 hellobench/build.py --lazyfs build/tools/lazyfs [--jobs 2] [NAME ...]

build_all() returns {name: Built | Exception}; a failed image never stops the others.
"""

import argparse
import collections
import concurrent.futures
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
sys.path.insert(0, HERE)
import debian_image  # noqa: E402
import images  # noqa: E402

Built = collections.namedtuple("Built", "plain estargz tag seconds")


def build_one(image, lazyfs):
    start = time.monotonic()
    name = "hb-" + image.name
    cfg = images.config(image)
    plain, tag = debian_image.build_image(name, image.packages, cfg)
    estargz, tag2 = debian_image.build_image(name, image.packages, cfg, lazyfs=lazyfs)
    assert tag == tag2
    return Built(plain, estargz, tag, time.monotonic() - start)


def build_all(selected, lazyfs, jobs=2, log=print):
    results = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(build_one, image, lazyfs): image for image in selected}
        for future in concurrent.futures.as_completed(futures):
            image = futures[future]
            try:
                results[image.name] = future.result()
                log(f"built {image.name} ({results[image.name].seconds:.0f}s)")
            except Exception as e:  # noqa: BLE001 - recorded per image
                results[image.name] = e
                log(f"build of {image.name} failed: {e}")
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lazyfs", required=True)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("names", nargs="*")
    args = ap.parse_args()
    res = build_all(images.select(args.names or None), os.path.abspath(args.lazyfs), args.jobs)
    return 0 if all(isinstance(r, Built) for r in res.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
