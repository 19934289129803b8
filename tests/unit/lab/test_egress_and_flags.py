"""Lab plumbing, pure parts: the egress CONNECT proxy (a real Unix-socket server and a real TCP
backend on 127.0.0.1) and the flag rewriting used to move controllers onto 127.0.0.1 ports."""
import os
import socket
import sys
import threading

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "lab"))

from gpufleet_lab import controllers, egress, netns  # noqa: E402


@pytest.fixture
def backend():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)

    def serve():
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            data = conn.recv(1024)
            conn.sendall(b"echo:" + data)
            conn.close()
    threading.Thread(target=serve, daemon=True).start()
    yield srv.getsockname()[1]
    srv.close()


@pytest.fixture
def proxy(tmp_path, backend):
    routes = {("10.96.0.50", 443): ("127.0.0.1", backend)}
    path = str(tmp_path / "egress.sock")
    logs = []
    srv = egress.EgressProxy(path, lambda h, p: routes.get((h, p)), log=logs.append)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield path, logs
    srv.shutdown()
    srv.server_close()


def _connect(path, target, payload=b"hello"):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.sendall(b"CONNECT %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % target.encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)
        if not chunk:
            break
        head += chunk
    status = head.split(b"\r\n", 1)[0]
    body = b""
    if b" 200 " in status:
        s.sendall(payload)
        while True:
            chunk = s.recv(1024)
            if not chunk:
                break
            body += chunk
    s.close()
    return status.decode(), body


def test_connect_to_a_service_ip_reaches_the_played_pod(proxy):
    status, body = _connect(proxy[0], "10.96.0.50:443")
    assert status == "HTTP/1.1 200 Connection established"
    assert body == b"echo:hello"


def test_a_service_without_a_played_pod_is_refused_and_logged(proxy):
    status, _ = _connect(proxy[0], "10.96.0.99:443")
    assert status == "HTTP/1.1 502 Bad Gateway"
    assert any("10.96.0.99:443" in m for m in proxy[1])


def test_loopback_targets_pass_through(proxy, backend):
    status, body = _connect(proxy[0], "127.0.0.1:%d" % backend, b"x")
    assert status.endswith("200 Connection established") and body == b"echo:x"


def test_non_connect_requests_are_refused(proxy):
    s = socket.socket(socket.AF_UNIX)
    s.connect(proxy[0])
    s.sendall(b"GET / HTTP/1.1\r\n\r\n")
    assert s.recv(100).startswith(b"HTTP/1.1 405")
    s.close()


def test_selector_config_routes_only_the_cluster_network():
    cfg = egress.selector_config("/run/x.sock")
    assert [s["name"] for s in cfg["egressSelections"]] == ["cluster"]
    assert cfg["egressSelections"][0]["connection"] == {
        "proxyProtocol": "HTTPConnect", "transport": {"uds": {"udsName": "/run/x.sock"}}}


@pytest.mark.parametrize("args,expected", [
    (["--a=1", "--port=9443", "--b"], ["--a=1", "--port=127", "--b"]),
    (["--port", "9443", "--b"], ["--port=127", "--b"]),
    (["--b"], ["--b", "--port=127"]),
    (["--port=1", "--port=2"], ["--port=127"]),
])
def test_set_flag_replaces_or_appends(args, expected):
    assert controllers.set_flag(args, "--port", "127") == expected


def test_match_uses_the_image_name_whatever_the_registry(monkeypatch):
    monkeypatch.setattr(controllers.os, "access", lambda *_: True)
    for image in ("registry.k8s.io/kueue/kueue:v0.19.2", "registry.invalid/gpufleet-lab/kueue/kueue:v0.19.2",
                  "mirror:5000/kueue/kueue@sha256:abc"):
        assert controllers.match(image, "manager", {}).name == "kueue"
    assert controllers.match("registry.k8s.io/kueue/kueueviz-backend:v0.19.2", "x", {}) is None


def _netns_available():
    import subprocess
    try:
        return subprocess.run([netns.UNSHARE, "--net", "true"], capture_output=True, timeout=10, check=False).returncode == 0
    except OSError:
        return False


@pytest.mark.skipif(not _netns_available(), reason="needs unshare --net (root / CAP_SYS_ADMIN on Linux)")
def test_a_played_pod_listens_in_its_own_namespace_and_reaches_the_lab_through_the_forwarder(tmp_path, backend):
    """A process in its own network namespace binds 0.0.0.0; the lab machine does not see that port,
    pod_host reaches it through setns, and the forwarder gives it the lab's 127.0.0.1 service."""
    import subprocess
    import time
    ready = str(tmp_path / "ready")
    server = ("import socket;s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);"
              "s.bind(('0.0.0.0',%d));s.listen(1);c,_=s.accept();c.sendall(b'in-pod');c.close();"
              "u=socket.create_connection(('127.0.0.1',%d));u.sendall(b'ping');print(u.recv(100).decode(),flush=True)")
    port = backend + 1 if backend < 65000 else backend - 1
    root = tmp_path / "root"
    root.mkdir()
    proc = subprocess.Popen([netns.UNSHARE, "--net", "--", "/bin/sh", "-c",
                             'while [ ! -e "$1" ]; do sleep 0.05; done; shift; exec "$@"', "sh", ready,
                             sys.executable, "-c", server % (port, backend)], stdout=subprocess.PIPE, text=True)
    try:
        netns.wait_unshared(proc.pid)
        netns.run_in(proc.pid, lambda: subprocess.run(["ip", "link", "set", "lo", "up"], check=True))
        listener = netns.listen(proc.pid, backend)
        stop = threading.Event()
        threading.Thread(target=netns.forward, args=(listener, ("127.0.0.1", backend), stop), daemon=True).start()
        open(ready, "w").close()
        deadline = time.time() + 10
        while True:
            try:
                conn = netns.connect(proc.pid, port, timeout=2)
                break
            except OSError:
                assert time.time() < deadline, "the pod's listener never came up"
                time.sleep(0.1)
        assert conn.recv(100) == b"in-pod"
        conn.close()
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        assert proc.communicate(timeout=10)[0].strip() == "echo:ping"
        stop.set()
    finally:
        proc.kill()
