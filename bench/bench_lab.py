#!/usr/bin/env python3
"""Lab benchmarks: cold build time, warm lab-up with 10 and 1,000 simulated GPU nodes, API server memory.

    .venv/bin/python bench/bench_lab.py                 # warm figures (+ the recorded cold build time)
    LAB_BENCH_COLD=1 .venv/bin/python bench/bench_lab.py   # also a truly cold build (empty Go caches, ~10+ min)
    LAB_BENCH_NODES=10,1000 (default)

"Warm" = binaries built and the CRD snapshot cached (any earlier lab-up), lab not running. Each figure is
the wall time of `lab.py up --config <generated config>` until every simulated node is Ready, the CRDs are
Established, the GPU simulator runs and the default ServiceAccount exists. Targets (issue 4): 10 nodes
< 30 s, 1,000 nodes < 120 s. Results are printed and written to .build/bench/lab.json.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "lab"))

from gpufleet_lab import cli, procs, settings  # noqa: E402

LAB = [sys.executable, os.path.join(ROOT, "lab", "lab.py")]
TARGETS = {10: 30.0, 1000: 120.0}


def rss_mib(name):
    pid = procs.read_pid(name)
    if not pid:
        return None
    with open("/proc/%d/status" % pid) as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024.0, 1)
    return None


def run(cmd, env=None):
    t = time.time()
    res = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise SystemExit("%s failed:\n%s" % (" ".join(cmd), res.stderr[-3000:]))
    return time.time() - t


def recorded_cold_build():
    path = os.path.join(settings.CACHE, "v" + settings.KUBE_VERSION, "build-times.log")
    out = {}
    try:
        with open(path) as fh:
            for line in fh:
                _, name, secs = line.split()
                out[name] = int(secs.rstrip("s"))  # the last record of each component wins
    except OSError:
        return None
    return out or None


def cold_build():
    """Build everything into a fresh cache with empty Go module and build caches."""
    tmp = tempfile.mkdtemp(prefix="gpufleet-lab-cold-")
    env = dict(os.environ, GPUFLEET_LAB_CACHE=os.path.join(tmp, "cache"), GOMODCACHE=os.path.join(tmp, "gomod"),
               GOCACHE=os.path.join(tmp, "gocache"))
    try:
        secs = run(["bash", os.path.join(ROOT, "lab", "build.sh")], env=env)
        with open(os.path.join(tmp, "cache", "v" + settings.KUBE_VERSION, "build-times.log")) as fh:
            parts = {line.split()[1]: int(line.split()[2].rstrip("s")) for line in fh}
    finally:
        subprocess.run(["chmod", "-R", "u+w", tmp], check=False)
        shutil.rmtree(tmp, ignore_errors=True)
    return round(secs, 1), parts


def warm_up(gpu_nodes, tmpdir):
    config = os.path.join(tmpdir, "lab-%d.yml" % gpu_nodes)
    run(LAB + ["gen-config", str(gpu_nodes), "--out", config])
    run(LAB + ["down"])
    secs = run(LAB + ["up", "--config", config, "--timeout", "600"])
    state = cli.read_state()
    time.sleep(5)  # let the controllers settle, then sample memory
    out = {
        "gpu_nodes": gpu_nodes,
        "lab_up_s": round(secs, 1),
        "target_s": TARGETS.get(gpu_nodes),
        "phases_s": state.get("timings"),
        "apiserver_rss_mib": rss_mib("kube-apiserver"),
        "etcd_rss_mib": rss_mib("etcd"),
        "kwok_rss_mib": rss_mib("kwok"),
    }
    out["within_target"] = out["target_s"] is None or out["lab_up_s"] < out["target_s"]
    return out


def main():
    missing = [b for b in cli.BINARIES if not os.access(settings.binary(b), os.X_OK)]
    if missing:
        print("bench_lab: skipped, lab not built (%s): run `make lab-build`" % ", ".join(missing))
        return 0
    was_running = cli.all_running()
    report = {"machine": {"cpus": os.cpu_count()}, "versions": {
        "kubernetes": settings.KUBE_VERSION, "etcd": settings.ETCD_VERSION, "helm": settings.HELM_VERSION,
        "kwok": settings.KWOK_VERSION}}
    report["cold_build_recorded_s"] = recorded_cold_build()
    if os.environ.get("LAB_BENCH_COLD"):
        total, parts = cold_build()
        report["cold_build_s"] = {"total": total, "parts": parts}
    counts = [int(x) for x in os.environ.get("LAB_BENCH_NODES", "10,1000").split(",")]
    tmpdir = tempfile.mkdtemp(prefix="gpufleet-lab-bench-")
    try:
        run(LAB + ["up"])  # make sure the CRD snapshot exists (the first lab-up ever creates it)
        report["warm_lab_up"] = [warm_up(n, tmpdir) for n in counts]
    finally:
        run(LAB + ["down"])
        shutil.rmtree(tmpdir, ignore_errors=True)
        if was_running:
            run(LAB + ["up"])
    os.makedirs(os.path.join(ROOT, ".build", "bench"), exist_ok=True)
    with open(os.path.join(ROOT, ".build", "bench", "lab.json"), "w") as fh:
        json.dump(report, fh, indent=2)
    print(json.dumps(report, indent=2))
    for r in report["warm_lab_up"]:
        print("warm lab-up, %5d GPU nodes: %6.1f s (target %s s)  apiserver RSS %s MiB  etcd RSS %s MiB"
              % (r["gpu_nodes"], r["lab_up_s"], r["target_s"], r["apiserver_rss_mib"], r["etcd_rss_mib"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
