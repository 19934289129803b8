"""`lab-down` leaves no process behind. Runs last in this directory (file name), then brings the lab
back so any later test of the session still has one (the session fixture stops it at the end when it
started it).
"""
import os
import subprocess
import sys

from gpufleet_lab import cli, procs, settings

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _lab_processes():
    """Every process whose command line is a lab binary or the lab's GPU simulator."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as fh:
                cmd = fh.read().split(b"\0")
        except OSError:
            continue
        if not cmd or not cmd[0]:
            continue
        head = b" ".join(cmd[:3]).decode(errors="replace")
        if head.startswith(settings.BIN) or "gpufleet_lab.gpu_simulator" in head:
            out.append((int(pid), head))
    return out


def test_lab_down_leaves_no_process(lab):
    pids = procs.running()
    assert all(pids.get(n) for n in cli.ORDER), pids
    assert _lab_processes()
    res = subprocess.run([sys.executable, os.path.join(ROOT, "lab", "lab.py"), "down"],
                         check=False, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert _lab_processes() == []
    for pid in pids.values():
        procs._reap(pid)  # when this pytest process started the lab, the dead processes are its children
        try:
            with open("/proc/%d/stat" % pid) as fh:  # gone, or dead and awaiting init's reaping
                assert fh.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"), pid
        except FileNotFoundError:
            pass
    for name in ("etcd", "apiserver", "controller-manager", "scheduler", "kwok"):
        assert procs.port_free(settings.PORTS[name]), name
    assert procs.running() == {}
    # a fresh lab again for the rest of the session (stopped at session end if the session started it)
    cli.up(os.environ.get("LAB_CONFIG", settings.DEFAULT_CONFIG), quiet=True)
