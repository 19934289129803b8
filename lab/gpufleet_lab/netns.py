"""The sandbox of a played pod: its own network namespace, mount namespace and root.

A played pod's process is started by ``unshare --net --mount``:

* **network**: whatever it listens on (the chart's ports, ``0.0.0.0`` included) exists only inside
  its namespace, as in a pod: nothing is exposed on the lab machine's interfaces and two pods can
  use the same port. pod_host reaches into the namespace by creating sockets from a thread that
  has joined it (``setns``): a listener on the pod's 127.0.0.1 that forwards to the lab API
  server, and connections for webhook calls and probes;
* **filesystem**: it runs chrooted in the pod root that pod_host fills with the pod's volumes
  (ConfigMaps, Secrets, the ServiceAccount token at its in-cluster path), plus ``/proc``, ``/dev``
  and the controller binaries (read-only, at ``/.lab/bin``) and any extra read-only mounts a
  controller entry asks for. So every absolute path of the container spec means what it means in
  the pod, and the mounts disappear with the process.

Linux only; needs CAP_SYS_ADMIN (the lab runs as root).
"""
import ctypes
import os
import socket
import threading

CLONE_NEWNET = 0x40000000
UNSHARE = "/usr/bin/unshare"
POD_BIN = "/.lab/bin"
# Runs inside the new namespaces: $1 ready file, $2 pod root, $3 controller bin dir, then pairs of
# read-only mounts "SRC DST" up to "--", then the command. Waits for pod_host (loopback, API server
# forwarder) before it chroots and execs.
BOOT = r"""set -e
ready="$1"; root="$2"; bindir="$3"; shift 3
mount --make-rprivate /
mkdir -p "$root/proc" "$root/dev" "$root/tmp" "$root/.lab/bin"
mount -t proc proc "$root/proc"
mount -t tmpfs -o mode=755,size=1m tmpfs "$root/dev"
for d in null zero random urandom full; do touch "$root/dev/$d"; mount --bind "/dev/$d" "$root/dev/$d"; done
mount --bind "$bindir" "$root/.lab/bin"; mount -o remount,bind,ro "$root/.lab/bin"
while [ "$1" != "--" ]; do
  mkdir -p "$root$2"; mount --bind "$1" "$root$2"; mount -o remount,bind,ro "$root$2"; shift 2
done
shift
while [ ! -e "$ready" ]; do sleep 0.05; done
exec chroot "$root" "$@"
"""

_libc = ctypes.CDLL(None, use_errno=True)


class NetnsError(RuntimeError):
    pass


def command(ready_file, root, bindir, argv, mounts=()):
    """argv (argv[0] a path inside the pod, e.g. /.lab/bin/kueue) run chrooted in root, in new network
    and mount namespaces, once ready_file exists. mounts: (host path, pod path) pairs, read-only."""
    pairs = [x for src, dst in mounts for x in (src, dst)]
    return [UNSHARE, "--net", "--mount", "--", "/bin/sh", "-c", BOOT, "sh", ready_file, root, bindir] + pairs + \
        ["--"] + list(argv)


def wait_unshared(pid, timeout=10.0):
    """Block until pid runs in a network namespace of its own (unshare has done its work)."""
    import time
    mine = os.stat("/proc/self/ns/net").st_ino
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if os.stat("/proc/%d/ns/net" % pid).st_ino != mine:
                return
        except OSError as exc:
            raise NetnsError("pid %d exited before its namespace was set up: %s" % (pid, exc))
        time.sleep(0.01)
    raise NetnsError("pid %d has no network namespace of its own after %.0fs" % (pid, timeout))


def run_in(pid, fn):
    """fn() run on a thread that has joined the network namespace of pid; returns its result."""
    out = {}

    def target():
        try:
            fd = os.open("/proc/%d/ns/net" % pid, os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise NetnsError("setns into pid %d: %s" % (pid, os.strerror(err)))
            finally:
                os.close(fd)
            out["value"] = fn()
        except BaseException as exc:  # handed to the caller's thread
            out["error"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


def connect(pid, port, timeout=10):
    """A TCP connection to 127.0.0.1:port inside pid's namespace."""
    return run_in(pid, lambda: socket.create_connection(("127.0.0.1", port), timeout=timeout))


def listen(pid, port):
    """A listening socket on 127.0.0.1:port inside pid's namespace."""
    def make():
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen(64)
        return s
    return run_in(pid, make)


def pump(a, b):
    try:
        while True:
            data = a.recv(65536)
            if not data:
                break
            b.sendall(data)
    except OSError:
        pass
    finally:
        for s, how in ((b, socket.SHUT_WR), (a, socket.SHUT_RD)):
            try:
                s.shutdown(how)
            except OSError:
                pass


def forward(listener, dest, stop):
    """Accept on listener (inside a namespace); splice each connection to dest on the lab machine."""
    listener.settimeout(0.5)
    while not stop.is_set():
        try:
            conn, _ = listener.accept()
        except socket.timeout:
            continue
        except OSError:
            return
        try:
            up = socket.create_connection(dest, timeout=10)
        except OSError:
            conn.close()
            continue
        up.settimeout(None)
        conn.settimeout(None)
        for a, b in ((conn, up), (up, conn)):
            threading.Thread(target=pump, args=(a, b), daemon=True).start()
    listener.close()
