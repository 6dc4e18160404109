"""Emulated network links for HelloBench: a private network namespace holding the registry, reached from
the host over a veth pair whose bandwidth is shaped with tc tbf, with latency added by a userspace TCP
delay proxy (this kernel has no netem).

    host ns                                  netns hb-PID
    lazyfs / skopeo --> veth hbh-PID  ====  veth hbn-PID 169.254.77.2:5000 (delay proxy)
                        169.254.77.1        --> 127.0.0.1:PORT docker-registry

Addresses are IPv4 link-local (169.254.77.0/30) on our own veth pair: traffic never leaves the machine.
tbf shapes both directions (egress of each veth end). The proxy holds every chunk of bytes for half the
round-trip time in each direction, keeping order and without limiting throughput, and waits one RTT
before forwarding a new connection (the TCP handshake).

    with Link(PROFILES["wan"]) as link:      # namespace, veth, tbf
        link.popen([...])                      # run a process inside the namespace
    python3 netem.py proxy LISTEN_HOST:PORT TARGET_HOST:PORT RTT_MS   # the proxy (run inside the netns)

Link.close() (also on exceptions) kills what it started and deletes the namespace, which removes the veth.
"""

import asyncio
import collections
import os
import subprocess
import sys
import time

Profile = collections.namedtuple("Profile", "name rate_mbit rtt_ms")

PROFILES = {
    "lan": Profile("lan", 1000, 2),
    "wan": Profile("wan", 100, 20),
    "slow": Profile("slow", 20, 80),
}

HOST_ADDR = "169.254.77.1"
NS_ADDR = "169.254.77.2"


def _ip(*args):
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def _tbf(dev, rate_mbit, netns=None):
    # burst: at least rate/HZ; 1 ms of traffic, at least 64 KiB. latency bounds the queue.
    burst = max(64 * 1024, rate_mbit * 1000 * 1000 // 8 // 1000)
    cmd = ["tc", "qdisc", "replace", "dev", dev, "root", "tbf", "rate", f"{rate_mbit}mbit",
           "burst", str(burst), "latency", "100ms"]
    if netns:
        cmd = ["ip", "netns", "exec", netns] + cmd
    subprocess.run(cmd, check=True, capture_output=True, text=True)


class Link:
    """A network namespace + veth pair shaped by `profile` (a Profile)."""

    def __init__(self, profile):
        self.profile = profile
        tag = f"{os.getpid() % 100000}"
        self.netns = f"hb-{tag}"
        self.host_dev = f"hbh{tag}"
        self.ns_dev = f"hbn{tag}"
        self.procs = []

    def __enter__(self):
        try:
            self.open()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def open(self):
        _ip("netns", "add", self.netns)
        _ip("link", "add", self.host_dev, "type", "veth", "peer", "name", self.ns_dev)
        _ip("link", "set", self.ns_dev, "netns", self.netns)
        _ip("addr", "add", f"{HOST_ADDR}/30", "dev", self.host_dev)
        _ip("link", "set", self.host_dev, "up")
        _ip("-n", self.netns, "addr", "add", f"{NS_ADDR}/30", "dev", self.ns_dev)
        _ip("-n", self.netns, "link", "set", self.ns_dev, "up")
        _ip("-n", self.netns, "link", "set", "lo", "up")
        _tbf(self.host_dev, self.profile.rate_mbit)
        _tbf(self.ns_dev, self.profile.rate_mbit, self.netns)

    def popen(self, cmd, **kw):
        """Start `cmd` inside the namespace; it is killed by close()."""
        proc = subprocess.Popen(["ip", "netns", "exec", self.netns, *cmd], **kw)
        self.procs.append(proc)
        return proc

    def start_proxy(self, listen_port, target):
        """The delay proxy NS_ADDR:listen_port -> target ("127.0.0.1:PORT" inside the namespace)."""
        proc = self.popen([sys.executable, os.path.abspath(__file__), "proxy", f"{NS_ADDR}:{listen_port}", target,
                           str(self.profile.rtt_ms)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        if proc.stdout.readline().strip() != b"ready":
            raise RuntimeError("delay proxy did not start")
        return f"{NS_ADDR}:{listen_port}"

    def close(self):
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.procs = []
        subprocess.run(["ip", "netns", "del", self.netns], capture_output=True)
        subprocess.run(["ip", "link", "del", self.host_dev], capture_output=True)


# ---------------------------------------------------------------------------------------------------
# The delay proxy.

async def _pipe(reader, writer, delay):
    """Copy reader -> writer, each chunk released `delay` seconds after it arrived, in order."""
    queue = asyncio.Queue()

    async def release():
        while True:
            item = await queue.get()
            if item is None:
                break
            due, data = item
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        try:
            writer.write_eof()
        except (OSError, RuntimeError):
            pass

    releaser = asyncio.ensure_future(release())
    try:
        while data := await reader.read(256 * 1024):
            queue.put_nowait((time.monotonic() + delay, data))
    except (ConnectionError, OSError):
        pass
    queue.put_nowait(None)
    try:
        await releaser
    except (ConnectionError, OSError):
        pass


async def _serve(listen, target, rtt):
    th, tp = target.rsplit(":", 1)

    async def handle(creader, cwriter):
        try:
            await asyncio.sleep(rtt)  # the handshake's round trip
            ureader, uwriter = await asyncio.open_connection(th, int(tp))
        except OSError:
            cwriter.close()
            return
        await asyncio.gather(_pipe(creader, uwriter, rtt / 2), _pipe(ureader, cwriter, rtt / 2))
        for w in (cwriter, uwriter):
            w.close()

    lh, lp = listen.rsplit(":", 1)
    server = await asyncio.start_server(handle, lh, int(lp), reuse_address=True)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


def main(argv):
    if len(argv) != 4 or argv[0] != "proxy":
        print("usage: netem.py proxy LISTEN_HOST:PORT TARGET_HOST:PORT RTT_MS", file=sys.stderr)
        return 2
    try:
        asyncio.run(_serve(argv[1], argv[2], float(argv[3]) / 1000.0))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
