"""The lab's egress proxy: how kube-apiserver reaches webhooks whose pods are simulated.

kube-apiserver calls an admission or conversion webhook at ``<service>.<namespace>.svc:<port>``,
resolves that to the Service's ClusterIP and dials it through the ``cluster`` egress selector.
The lab gives kube-apiserver an EgressSelectorConfiguration whose ``cluster`` selection is an
HTTP CONNECT proxy on a Unix socket (this module), so every such dial arrives here as
``CONNECT 10.96.x.y:443``. The proxy looks the Service up, follows its targetPort to the
container port of the pod that the lab plays with a real controller process (pod_host), and
splices the TCP stream to that process, on the loopback of the pod's own network namespace
(netns.py). TLS is end to end between kube-apiserver and
the controller: the webhook configuration's caBundle and the serving certificate the chart
arranges (cert-manager or the controller's own rotation) are what is checked. Nothing in the
webhook configurations is rewritten.

A target that resolves to no played pod is refused with ``502`` (as a dial to a pod without a
listening process would fail). Dials to loopback addresses (KWOK's kubelet endpoints) pass
through unchanged.
"""
import ipaddress
import os
import socket
import socketserver
import threading

from . import netns

MAX_HEADER = 16384


def _read_head(sock):
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            return None, b""
        buf += chunk
        if len(buf) > MAX_HEADER:
            return None, b""
    head, _, rest = buf.partition(b"\r\n\r\n")
    return head.decode("latin-1"), rest


def _split_hostport(target):
    host, _, port = target.rpartition(":")
    host = host.strip("[]")
    return host, int(port)


class _Handler(socketserver.BaseRequestHandler):
    def handle(self):
        sock = self.request
        head, rest = _read_head(sock)
        if not head:
            return
        parts = head.split("\r\n", 1)[0].split()
        if len(parts) < 2 or parts[0] != "CONNECT":
            sock.sendall(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
            return
        target = parts[1]
        try:
            host, port = _split_hostport(target)
            dest = self.server.route(host, port)
        except Exception as exc:  # a bad target or a failed lookup is answered, never fatal
            dest, reason = None, str(exc)
        else:
            reason = "no played pod behind %s" % target
        if dest is None:
            self.server.log("refused CONNECT %s: %s" % (target, reason))
            sock.sendall(b"HTTP/1.1 502 Bad Gateway\r\n\r\n")
            return
        try:
            upstream = dest() if callable(dest) else socket.create_connection(dest, timeout=10)
        except OSError as exc:
            self.server.log("CONNECT %s failed: %s" % (target, exc))
            sock.sendall(b"HTTP/1.1 503 Service Unavailable\r\n\r\n")
            return
        upstream.settimeout(None)
        self.server.count(target)
        sock.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        if rest:
            upstream.sendall(rest)
        t = threading.Thread(target=netns.pump, args=(upstream, sock), daemon=True)
        t.start()
        netns.pump(sock, upstream)
        t.join(timeout=60)
        upstream.close()


class EgressProxy(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """CONNECT proxy on a Unix socket.

    ``resolver(host, port)`` returns None, an (ip, port) to dial, or a callable returning a connected
    socket (a connection made inside a played pod's network namespace).
    """

    daemon_threads = True

    def __init__(self, path, resolver, log=print):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        self._resolver = resolver
        self.log = log
        self.connects = {}
        self._lock = threading.Lock()
        super().__init__(path, _Handler)
        os.chmod(path, 0o600)

    def route(self, host, port):
        try:
            if ipaddress.ip_address(host).is_loopback:
                return host, port
        except ValueError:
            pass
        return self._resolver(host, port)

    def count(self, target):
        with self._lock:
            self.connects[target] = self.connects.get(target, 0) + 1


def selector_config(socket_path):
    """The EgressSelectorConfiguration kube-apiserver reads (--egress-selector-config-file)."""
    return {
        "apiVersion": "apiserver.k8s.io/v1beta1",
        "kind": "EgressSelectorConfiguration",
        "egressSelections": [{
            "name": "cluster",
            "connection": {"proxyProtocol": "HTTPConnect", "transport": {"uds": {"udsName": socket_path}}},
        }],
    }
