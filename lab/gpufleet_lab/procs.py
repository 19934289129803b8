"""Start, track and stop the lab's processes (pid files under RUN/pids, logs under RUN/logs)."""
import contextlib
import errno
import fcntl
import os
import signal
import socket
import subprocess
import sys
import time

from . import settings


class LabError(RuntimeError):
    """A clear, user-facing failure (missing binary, port taken, component not healthy)."""


_CHILDREN = {}  # name -> Popen, for processes this interpreter started (exit status when they die)


_LOCK_DEPTH = [0, None]


@contextlib.contextmanager
def lab_lock(timeout=600.0):
    """Serialise lab-up / lab-down between processes sharing this run dir (re-entrant in-process)."""
    if _LOCK_DEPTH[0]:
        _LOCK_DEPTH[0] += 1
        try:
            yield
        finally:
            _LOCK_DEPTH[0] -= 1
        return
    path = settings.RUN.rstrip("/") + ".lock"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fh = open(path, "w")
    deadline = time.time() + timeout
    while True:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.time() > deadline:
                fh.close()
                raise LabError("another lab-up/lab-down holds %s for more than %ds" % (path, timeout))
            time.sleep(0.2)
    _LOCK_DEPTH[0], _LOCK_DEPTH[1] = 1, fh
    try:
        yield
    finally:
        _LOCK_DEPTH[0], _LOCK_DEPTH[1] = 0, None
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()


def _pidfile(name):
    return os.path.join(settings.PIDS, name + ".pid")


def logfile(name):
    return os.path.join(settings.LOGS, name + ".log")


def _cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as fh:
            return fh.read().split(b"\0")
    except OSError:
        return None


def _live(pid):
    """Running (not gone, not a zombie)."""
    cmd = _cmdline(pid)
    return bool(cmd and cmd[0])


def read_pid(name):
    """The pid of a lab process if it is alive and still the program we started, else None."""
    try:
        with open(_pidfile(name)) as fh:
            pid, exe = fh.read().split("\n", 1)
        pid = int(pid)
    except (OSError, ValueError):
        return None
    cmd = _cmdline(pid)
    if not cmd or exe.strip().encode() not in cmd[:3]:
        return None
    try:
        with open("/proc/%d/stat" % pid) as fh:
            if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                return None
    except OSError:
        return None
    return pid


def running():
    out = {}
    if os.path.isdir(settings.PIDS):
        for entry in sorted(os.listdir(settings.PIDS)):
            if entry.endswith(".pid"):
                name = entry[:-4]
                out[name] = read_pid(name)
    return out


def port_free(port, host=settings.HOST):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        return True
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EACCES):
            return False
        raise
    finally:
        sock.close()


def check_ports(names):
    busy = [("%s (%s:%d)" % (n, settings.HOST, settings.PORTS[n])) for n in names
            if not port_free(settings.PORTS[n])]
    if busy:
        raise LabError("port(s) already in use: %s. Another program (or a lab started with another "
                       "GPUFLEET_LAB_RUN) holds them; stop it or set GPUFLEET_LAB_*_PORT." % ", ".join(busy))


def require_binary(path):
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise LabError("missing binary %s: run `make lab-build` first" % path)


def start(name, argv, env=None, exe=None):
    """Start argv[0] in its own session, detached; record its pid. Returns the pid.

    ``exe``: the program the process ends up running when argv[0] execs another one (``unshare``
    starting a played controller, as its path inside the pod); it is what the pid file records and
    read_pid() checks.
    """
    require_binary(argv[0])
    os.makedirs(settings.PIDS, exist_ok=True)
    os.makedirs(settings.LOGS, exist_ok=True)
    log = open(logfile(name), "ab")
    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True, close_fds=True, env=full_env, cwd=settings.RUN)
    log.close()
    previous = _CHILDREN.get(name)
    if previous is not None:
        previous.poll()  # reap an earlier process of the same name (a restarted controller), never a zombie
    _CHILDREN[name] = proc
    # Popen returns once exec has begun, but /proc/<pid>/cmdline is briefly empty until the kernel
    # has laid out the new program's arguments: a read_pid() in that window would take the process
    # for dead. Wait (briefly) until its command line is the program's.
    deadline = time.time() + 5
    while time.time() < deadline and proc.poll() is None:
        cmd = _cmdline(proc.pid)
        if cmd and argv[0].encode() in cmd[:3]:
            break
        time.sleep(0.005)
    with open(_pidfile(name), "w") as fh:
        fh.write("%d\n%s" % (proc.pid, exe or argv[0]))
    return proc.pid


def start_python(name, module, args=()):
    """Start a lab Python module (e.g. the GPU simulator) with this interpreter."""
    env = {"PYTHONPATH": os.pathsep.join(p for p in (settings.LAB_DIR, os.environ.get("PYTHONPATH")) if p),
           "PYTHONUNBUFFERED": "1"}
    return start(name, [sys.executable, "-m", module] + list(args), env=env)


def alive(name):
    proc = _CHILDREN.get(name)
    if proc is not None and _pid_in_file(name) == proc.pid:
        return proc.poll() is None  # our child: its exit status is the truth
    return read_pid(name) is not None


def _pid_in_file(name):
    try:
        with open(_pidfile(name)) as fh:
            return int(fh.read().split("\n", 1)[0])
    except (OSError, ValueError):
        return None


def exit_status(name):
    """How a process this interpreter started ended: 'exit status N', 'killed by SIGTERM', or None."""
    proc = _CHILDREN.get(name)
    if proc is None:
        return None
    code = proc.poll()
    if code is None:
        return None
    if code < 0:
        try:
            return "killed by %s" % signal.Signals(-code).name
        except ValueError:
            return "killed by signal %d" % -code
    return "exit status %d" % code


def _reap(pid):
    """Collect the exit status when the process is our own child (lab-up run in-process)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def stop(name, timeout=15.0):
    """SIGTERM the process group (each lab process leads its own), then SIGKILL after timeout."""
    pid = read_pid(name)
    if pid is not None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(pid, sig)
            except ProcessLookupError:
                break
            deadline = time.time() + (timeout if sig == signal.SIGTERM else 5)
            while time.time() < deadline and _cmdline(pid) is not None and read_pid(name) is not None:
                _reap(pid)
                time.sleep(0.1)
            _reap(pid)
            if read_pid(name) is None:
                break
    try:
        os.unlink(_pidfile(name))
    except FileNotFoundError:
        pass
    return pid


def names_run_dir(arg, run_dir):
    """Whether a command-line argument (bytes) names a path in run_dir itself -- not in a sibling run dir that
    merely starts with the same characters (``.../lab/run`` against a second lab's ``.../lab/run-b``)."""
    return run_dir + b"/" in arg or arg == run_dir or arg.endswith(b"=" + run_dir)


def orphans():
    """Lab processes of this run dir whose pid file is gone (e.g. removed under a running lab).

    Matched strictly: the program is one of the lab's binaries (or the lab's simulator module) and its
    command line names this run dir. Returns [(pid, program)].
    """
    tracked = {p for p in running().values() if p}
    run_dir = settings.RUN.encode()
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in tracked or int(entry) == os.getpid():
            continue
        cmd = _cmdline(int(entry))
        if not cmd or not cmd[0]:
            continue
        ours = (any(cmd[0].startswith(d.encode() + b"/") for d in (settings.BIN, settings.CONTROLLER_BIN))
                or any(m in cmd[:3] for m in (b"gpufleet_lab.gpu_simulator", b"gpufleet_lab.pod_host")))
        if not ours and cmd[0].startswith(b"/.lab/bin/"):  # a played controller, chrooted in a pod root
            try:
                ours = os.readlink("/proc/%s/root" % entry).startswith(settings.RUN + "/")
            except OSError:
                ours = False
            if ours:
                out.append((int(entry), cmd[0].decode(errors="replace")))
            continue
        if ours and any(names_run_dir(arg, run_dir) for arg in cmd[1:]):
            out.append((int(entry), cmd[0].decode(errors="replace")))
    return out


def kill_orphans(timeout=15.0):
    victims = orphans()
    for pid, _ in victims:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.time() + timeout
    for pid, _ in victims:
        while time.time() < deadline and _live(pid):
            _reap(pid)
            time.sleep(0.1)
        if _live(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _reap(pid)
    return victims


def tail(name, lines=20):
    try:
        with open(logfile(name), "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 8192))
            return "\n".join(fh.read().decode(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
