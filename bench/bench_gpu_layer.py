#!/usr/bin/env python3
"""GPU layer benchmark: playbooks/gpu.yml converge and idempotent re-run on the lab with 10 and 1,000 GPU nodes.

    .venv/bin/python bench/bench_gpu_layer.py          # GPU_BENCH_NODES=10,1000 (default)

For each size it writes a lab config with that many simulated GPU nodes (`lab.py gen-config`), brings the
running lab to it (`lab.py up --config`, which adds/removes simulated nodes), then times
`ansible-playbook -i <config> playbooks/gpu.yml` twice: the first converge (labels for every node, MIG
and sharing applied by the simulator) and the re-run (changed=0 expected). Target (issue 5): the re-run at
1,000 nodes takes at most 1.5x the re-run at 10 nodes (labels are read with one list call and patched in
bulk, only where they differ). Afterwards the lab is brought back to inventories/lab/config.yml and the
GPU layer converged there again. The lab test lock is held throughout so no lab test session runs
against a 1,000-node lab. Results: printed and written to .build/bench/gpu_layer.json.
"""
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "lab"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration", "lab"))

from gpufleet_lab import cli, settings  # noqa: E402
from playbook import LAB_CONFIG, ansible_playbook  # noqa: E402

LAB = [sys.executable, os.path.join(ROOT, "lab", "lab.py")]
RATIO_TARGET = 1.5


def run(cmd):
    res = subprocess.run(cmd, check=False, capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit("%s failed:\n%s" % (" ".join(cmd), (res.stdout + res.stderr)[-3000:]))


PROFILE = re.compile(r"^(.+?) -+ (\d+\.\d+)s$", re.M)


def converge(config):
    t = time.time()
    res = ansible_playbook("playbooks/gpu.yml", config=config, timeout=1800)
    secs = round(time.time() - t, 1)
    if res.rc != 0:
        raise SystemExit("gpu.yml failed on %s:\n%s" % (config, res))
    return secs, res.changed, [[m.group(1).strip(), float(m.group(2))] for m in PROFILE.finditer(res.stdout)][:8]


def measure(gpu_nodes, tmpdir):
    config = os.path.join(tmpdir, "lab-%d.yml" % gpu_nodes)
    run(LAB + ["gen-config", str(gpu_nodes), "--out", config])
    run(LAB + ["up", "--config", config, "--timeout", "900"])
    first_s, first_changed, _ = converge(config)
    rerun_s, rerun_changed, slowest = converge(config)
    out = {"gpu_nodes": gpu_nodes, "converge_s": first_s, "converge_changed": first_changed,
           "rerun_s": rerun_s, "rerun_changed": rerun_changed, "rerun_slowest_tasks": slowest}
    print(json.dumps(out), flush=True)
    return out


def main():
    missing = [b for b in cli.BINARIES if not os.access(settings.binary(b), os.X_OK)]
    if missing:
        print("bench_gpu_layer: skipped, lab not built (%s): run `make lab-build`" % ", ".join(missing))
        return 0
    os.environ["ANSIBLE_CALLBACKS_ENABLED"] = "ansible.posix.profile_tasks"  # per-task times of the re-run
    lock = open(settings.RUN.rstrip("/") + ".tests.lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)  # no lab test session meanwhile
    counts = [int(x) for x in os.environ.get("GPU_BENCH_NODES", "10,1000").split(",")]
    tmpdir = tempfile.mkdtemp(prefix="gpufleet-gpu-bench-")
    report = {"machine": {"cpus": os.cpu_count(), "load_avg_start": os.getloadavg()}, "runs": []}
    try:
        for n in counts:
            report["runs"].append(measure(n, tmpdir))
    finally:
        run(LAB + ["up", "--config", LAB_CONFIG, "--timeout", "900"])
        converge(LAB_CONFIG)
        shutil.rmtree(tmpdir, ignore_errors=True)
        lock.close()
    by = {r["gpu_nodes"]: r for r in report["runs"]}
    if 10 in by and 1000 in by:
        report["rerun_ratio_1000_vs_10"] = round(by[1000]["rerun_s"] / by[10]["rerun_s"], 2)
        report["rerun_ratio_target"] = RATIO_TARGET
        report["within_target"] = report["rerun_ratio_1000_vs_10"] <= RATIO_TARGET
    report["machine"]["load_avg_end"] = os.getloadavg()
    os.makedirs(os.path.join(ROOT, ".build", "bench"), exist_ok=True)
    with open(os.path.join(ROOT, ".build", "bench", "gpu_layer.json"), "w") as fh:
        json.dump(report, fh, indent=2)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
