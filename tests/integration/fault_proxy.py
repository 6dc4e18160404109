"""A counting, fault-injecting HTTP reverse proxy for the registry tests (Python 3 stdlib only).

Sits on 127.0.0.1 in front of a registry (plain http) and forwards every request. It records each
exchange (method, path, Range, status, body bytes sent) so tests can count what a mount fetched, and it
injects faults into blob GETs on demand:

    with FaultProxy("127.0.0.1:5000") as proxy:
        proxy.host                              # "127.0.0.1:PORT": use docker://PROXY_HOST/...
        proxy.inject("reset", count=2)          # the next 2 blob GETs: TCP reset before any answer
        proxy.inject("status", status=503)      # ... answered 503 (429 with retry_after="1")
        proxy.inject("delay", seconds=2)        # ... answered after a delay
        proxy.inject("stall")                   # ... never answered (until the proxy stops)
        proxy.inject("drip", seconds=60)        # ... body sent a few bytes at a time over `seconds`
        proxy.inject("truncate")                # ... full Content-Length announced, half the body sent
        proxy.inject("corrupt")                 # ... one byte of the body flipped
        proxy.inject(None)                      # no more faults (count=None means "until changed")
        proxy.blob_gets()                       # the recorded blob GETs

Threads: one per connection (ThreadingHTTPServer); the fault plan and the record are guarded by one
lock. stop() wakes stalled handlers, shuts the server down and joins its thread.
"""

import http.client
import http.server
import socket
import struct
import sys
import threading
import time

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
              "transfer-encoding", "upgrade", "host"}


class Exchange:
    def __init__(self, method, path, range_header, status, body_bytes, fault):
        self.method, self.path, self.range, self.status = method, path, range_header, status
        self.body_bytes, self.fault = body_bytes, fault

    @property
    def is_blob_get(self):
        return self.method == "GET" and "/blobs/sha256:" in self.path

    def __repr__(self):
        return f"{self.method} {self.path} range={self.range} -> {self.status} {self.body_bytes}B {self.fault or ''}"


class FaultProxy:
    def __init__(self, upstream):
        self.upstream = upstream
        self._lock = threading.Lock()
        self._fault = None          # guarded by _lock: (kind, params) or None
        self._fault_left = None     # guarded by _lock: remaining count, None = unlimited
        self._record = []           # guarded by _lock
        self._stopping = threading.Event()
        self._server = None
        self._thread = None

    # -- control ---------------------------------------------------------------------------------

    def inject(self, kind, count=None, **params):
        with self._lock:
            self._fault = (kind, params) if kind else None
            self._fault_left = count

    def _take_fault(self):
        with self._lock:
            if self._fault is None:
                return None
            fault = self._fault
            if self._fault_left is not None:
                self._fault_left -= 1
                if self._fault_left <= 0:
                    self._fault, self._fault_left = None, None
            return fault

    def record(self):
        with self._lock:
            return list(self._record)

    def blob_gets(self):
        return [e for e in self.record() if e.is_blob_get]

    def reset_record(self):
        with self._lock:
            self._record.clear()

    def _add(self, exchange):
        with self._lock:
            self._record.append(exchange)

    @property
    def host(self):
        return f"127.0.0.1:{self._server.server_address[1]}"

    # -- lifecycle -------------------------------------------------------------------------------

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self):
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def setup(self):
                super().setup()
                # Headers and body go out in separate writes: without TCP_NODELAY, Nagle and the client's
                # delayed ACK add ~40 ms to every small response, which would swamp what we measure.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_GET(self):
                self._forward()

            do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = do_GET

            def _forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                fault = None
                if self.command == "GET" and "/blobs/sha256:" in self.path:
                    fault = proxy._take_fault()
                kind, params = fault if fault else (None, {})
                if kind == "reset":
                    proxy._add(Exchange(self.command, self.path, self.headers.get("Range"), 0, 0, "reset"))
                    self._reset()
                    return
                if kind == "stall":
                    proxy._add(Exchange(self.command, self.path, self.headers.get("Range"), 0, 0, "stall"))
                    proxy._stopping.wait(params.get("seconds", 3600))
                    self._reset()
                    return
                if kind == "status":
                    status = params.get("status", 503)
                    payload = b'{"errors":[{"code":"UNAVAILABLE","message":"injected"}]}'
                    self.send_response(status)
                    if "retry_after" in params:
                        self.send_header("Retry-After", str(params["retry_after"]))
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    proxy._add(Exchange(self.command, self.path, self.headers.get("Range"), status, len(payload),
                                        "status"))
                    return
                if kind == "delay":
                    proxy._stopping.wait(params.get("seconds", 1))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                conn = http.client.HTTPConnection(proxy.upstream, timeout=60)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    response = conn.getresponse()
                    data = response.read()
                    status = response.status
                    out_headers = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
                finally:
                    conn.close()
                send = data
                if kind == "corrupt" and status in (200, 206) and data:
                    middle = len(data) // 2
                    send = data[:middle] + bytes([data[middle] ^ 0x5A]) + data[middle + 1:]
                if kind == "truncate" and status in (200, 206) and data:
                    send = data[:len(data) // 2]
                self.send_response(status)
                for k, v in out_headers:
                    if k.lower() != "content-length":
                        self.send_header(k, v)
                if self.command != "HEAD" or "content-length" not in {k.lower() for k, _ in out_headers}:
                    self.send_header("Content-Length", str(len(data)))
                else:
                    self.send_header("Content-Length", dict((k.lower(), v) for k, v in out_headers)["content-length"])
                self.end_headers()
                if self.command == "HEAD":
                    proxy._add(Exchange(self.command, self.path, self.headers.get("Range"), status, 0, kind))
                    return
                if kind == "drip":
                    step = max(1, len(send) // 100)
                    pause = params.get("seconds", 60) / 100
                    for i in range(0, len(send), step):
                        if proxy._stopping.wait(pause):
                            break
                        self.wfile.write(send[i:i + step])
                        self.wfile.flush()
                else:
                    self.wfile.write(send)
                proxy._add(Exchange(self.command, self.path, self.headers.get("Range"), status, len(send), kind))
                if kind == "truncate":
                    self.wfile.flush()
                    self._reset()

            def _reset(self):
                # SO_LINGER 0 makes close() send a TCP RST: a connection reset, as a crashed server gives.
                try:
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                except OSError:
                    pass
                self.close_connection = True

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                # Clients that hang up mid-body (a read deadline, an injected fault) are expected here.
                if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
                    super().handle_error(request, client_address)

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=10)
            self._server = None


if __name__ == "__main__":
    with FaultProxy(sys.argv[1]) as p:
        print(p.host, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
