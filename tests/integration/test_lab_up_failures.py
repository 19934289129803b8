"""lab-up refuses what would give a lab that does not work, names it, and leaves nothing running.

Each case runs `lab.py up` as its own process against a run dir and ports of its own (so a lab
that the suite keeps on the default ports is not touched): a real chart missing from the mirror
source, a controller binary missing or dying at start, a port in use. Needs the lab binaries
(`make lab-build`) and ../shared (the real charts); skips with the reason otherwise.
"""
import os
import socket
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "lab"))

from gpufleet_lab import charts, controllers, settings  # noqa: E402

PORTS = {"GPUFLEET_LAB_API_PORT": 46443, "GPUFLEET_LAB_ETCD_PORT": 42379, "GPUFLEET_LAB_ETCD_PEER_PORT": 42380,
         "GPUFLEET_LAB_KCM_PORT": 40257, "GPUFLEET_LAB_SCHED_PORT": 40259, "GPUFLEET_LAB_KWOK_PORT": 40247,
         "GPUFLEET_LAB_DCGM_PORT": 40248}

pytestmark = [
    pytest.mark.skipif(not os.access(settings.binary("kube-apiserver"), os.X_OK),
                       reason="lab binaries not built (make lab-build)"),
    pytest.mark.skipif(not os.path.isdir(os.path.join(settings.SHARED, "upstream", "charts")),
                       reason="../shared/upstream/charts (the real charts) is absent"),
]


def _lab_up(tmp_path, **env):
    full = dict(os.environ, GPUFLEET_LAB_RUN=str(tmp_path / "run"), **{k: str(v) for k, v in PORTS.items()})
    full.update(env)
    return subprocess.run([sys.executable, os.path.join(ROOT, "lab", "lab.py"), "up", "--config",
                           os.path.join(ROOT, "inventories", "lab", "config.yml")],
                          capture_output=True, text=True, env=full, timeout=600, check=False)


def _nothing_left(tmp_path):
    run = str(tmp_path / "run")
    left = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as fh:
                cmd = fh.read()
        except OSError:
            continue
        if run.encode() in cmd:
            left.append(cmd.replace(b"\0", b" ")[:200].decode(errors="replace"))
    for port in PORTS.values():
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, "port %d still bound" % port
    assert not left, left


def test_a_real_chart_missing_from_the_mirror_source_stops_lab_up(tmp_path):
    real = sorted(charts.REAL_CHARTS)[0]
    shared = tmp_path / "shared"
    (shared / "upstream").mkdir(parents=True)
    for entry in os.listdir(os.path.join(settings.SHARED, "upstream")):
        if entry != "charts":
            os.symlink(os.path.join(settings.SHARED, "upstream", entry), shared / "upstream" / entry)
    (shared / "upstream" / "charts").mkdir()
    for entry in os.listdir(os.path.join(settings.SHARED, "upstream", "charts")):
        if not entry.startswith(real + "-"):
            os.symlink(os.path.join(settings.SHARED, "upstream", "charts", entry), shared / "upstream" / "charts" / entry)
    res = _lab_up(tmp_path, GPUFLEET_SHARED=str(shared), GPUFLEET_LAB_CHARTS=str(tmp_path / "charts"))
    assert res.returncode != 0, res.stdout + res.stderr
    assert real in res.stderr and "upstream/charts" in res.stderr, res.stderr[-2000:]
    _nothing_left(tmp_path)


@pytest.mark.parametrize("case", ["missing", "dies"])
def test_a_controller_binary_missing_or_dying_at_start_stops_lab_up(tmp_path, case):
    chart = "kueue" if "kueue" in charts.REAL_CHARTS else sorted(charts.REAL_CHARTS)[0]
    victim = controllers.CHART_BINARIES[chart][0]
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name in os.listdir(controllers.controller_bin()):
        if name != victim:
            os.symlink(os.path.join(controllers.controller_bin(), name), bindir / name)
    if case == "dies":
        (bindir / victim).write_text("#!/bin/sh\nkill -SEGV $$\n")
        (bindir / victim).chmod(0o755)
    res = _lab_up(tmp_path, GPUFLEET_LAB_CONTROLLER_BIN=str(bindir))
    assert res.returncode != 0, res.stdout + res.stderr
    assert victim in res.stderr, res.stderr[-2000:]
    assert ("missing controller binaries" if case == "missing" else "do not start") in res.stderr, res.stderr[-2000:]
    _nothing_left(tmp_path)


def test_a_port_in_use_stops_lab_up(tmp_path):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", PORTS["GPUFLEET_LAB_API_PORT"]))
        s.listen(1)
        res = _lab_up(tmp_path)
    assert res.returncode != 0
    assert "already in use" in res.stderr and str(PORTS["GPUFLEET_LAB_API_PORT"]) in res.stderr, res.stderr[-2000:]
    _nothing_left(tmp_path)

