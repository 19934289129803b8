#!/usr/bin/env python3
"""The whole platform in the lab, with the real charts and controllers: converge time and memory.

    .venv/bin/python bench/bench_platform.py            # the lab config (6 GPU nodes, 9 in all)
    LAB_BENCH_NODES=lab,1000 .venv/bin/python bench/bench_platform.py   # also `lab.py gen-config 1000`

For each node count: a fresh lab (`lab.py up`, warm binaries and CRD snapshot), then `playbooks/site.yml`
from an empty lab (every service converged, controllers playing their pods), then the idempotent re-run
(changed=0 expected), and the lab's memory: the sum of RSS over every process the lab runs (control plane,
KWOK, simulator, pod-host and every real controller), with the largest ones listed. Also the recorded build
time per controller (from the lab cache's build-times logs). Figures, not pass/fail; written to
.build/bench/platform.json. The lab must not be running (the bench starts and stops its own).
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "lab"))

from gpufleet_lab import settings  # noqa: E402

LAB = [sys.executable, os.path.join(ROOT, "lab", "lab.py")]
CONFIG = os.path.join(ROOT, "inventories", "lab", "config.yml")


def _env():
    env = dict(os.environ)
    env["PATH"] = settings.BIN + os.pathsep + env.get("PATH", "")
    env["ANSIBLE_CONFIG"] = os.path.join(ROOT, "ansible.cfg")
    env["ANSIBLE_COLLECTIONS_PATH"] = os.path.join(ROOT, ".build", "collections")
    return env


def timed(cmd, env=None):
    t = time.time()
    res = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env or _env(), cwd=ROOT)
    return time.time() - t, res


def recap(stdout):
    m = re.search(r"ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", stdout)
    return dict(zip(("ok", "changed", "unreachable", "failed"), map(int, m.groups()))) if m else None


def lab_rss():
    """{program: RSS MiB} of every process whose command line or root is under the lab's run dir."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as fh:
                cmd = fh.read().split(b"\0")
            root = os.readlink("/proc/%s/root" % entry)
            with open("/proc/%s/status" % entry) as fh:
                rss = next((int(line.split()[1]) for line in fh if line.startswith("VmRSS:")), 0)
        except OSError:
            continue
        ours = root.startswith(settings.RUN) or any(settings.RUN.encode() in a for a in cmd) \
            or (cmd and cmd[0].startswith(settings.BIN.encode()))
        if ours and rss:
            name = os.path.basename(cmd[0].decode(errors="replace"))
            if name.startswith("python"):
                name = next((a.decode() for a in cmd if a.startswith(b"gpufleet_lab.")), name)
            out[name] = out.get(name, 0) + rss / 1024.0
    return out


def recorded_builds():
    times = {}
    for path in (os.path.join(settings.CACHE, "v" + settings.KUBE_VERSION, "build-times.log"),
                 os.path.join(settings.CACHE, "controllers", "build-times.log")):
        try:
            with open(path) as fh:
                for line in fh:
                    parts = line.split()
                    if len(parts) == 3:
                        times[parts[1]] = parts[2]
        except OSError:
            pass
    return times


def bench(nodes):
    config = CONFIG
    if nodes != "lab":
        config = os.path.join(tempfile.mkdtemp(), "lab-%d.yml" % nodes)
        subprocess.run(LAB + ["gen-config", str(nodes), "--out", config], check=True, capture_output=True)
    subprocess.run(LAB + ["down"], check=False, capture_output=True)
    up, res = timed(LAB + ["up", "--config", config])
    if res.returncode != 0:
        raise SystemExit("lab-up failed: %s" % res.stderr[-2000:])
    play = [os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), "-i", config, "playbooks/site.yml"]
    first, res1 = timed(play)
    second, res2 = timed(play)
    rss = lab_rss()
    subprocess.run(LAB + ["down"], check=False, capture_output=True)
    import yaml
    with open(config) as fh:
        gpu_nodes = sum(1 for n in yaml.safe_load(fh)["nodes"] if n.get("pool"))
    return {"config": nodes, "gpu_nodes": gpu_nodes, "lab_up_s": round(up, 1), "converge_s": round(first, 1), "converge": recap(res1.stdout),
            "rerun_s": round(second, 1), "rerun": recap(res2.stdout), "rss_total_mib": round(sum(rss.values())),
            "rss_top_mib": dict(sorted(((k, round(v)) for k, v in rss.items()), key=lambda kv: -kv[1])[:12])}


def main():
    counts = [n if n == "lab" else int(n) for n in os.environ.get("LAB_BENCH_NODES", "lab").split(",")]
    results = {"builds": recorded_builds(), "runs": [bench(n) for n in counts]}
    os.makedirs(os.path.join(ROOT, ".build", "bench"), exist_ok=True)
    with open(os.path.join(ROOT, ".build", "bench", "platform.json"), "w") as fh:
        json.dump(results, fh, indent=2)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
