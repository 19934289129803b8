#!/usr/bin/env python3
"""Benchmark: how fast the lab's real Kueue admits a team's job, and Volcano places a gang.

    make lab-up && .venv/bin/python bench/bench_journeys.py [--jobs 20] [--gangs 5]

- Kueue admission latency: one-GPU Jobs (examples/gpu-job) submitted one after another to a team's LocalQueue;
  for each, the time from the create call returning to its Workload showing Admitted (polled every 20 ms), then
  the Job is deleted so the next one finds quota. Median and max over --jobs, and a burst: --jobs Jobs at once
  (within the quota), the time until all are admitted.
- Volcano gang placement latency: a 2-worker x 1-GPU volcano-gang job, the time from create to both workers bound
  to nodes; median and max over --gangs.

Figures, not pass/fail, written to .build/bench/journeys.json. The GPUs are the lab's simulated ones; the
decisions are the real controllers' (Kueue v0.19.2, Volcano v1.15.1) on this machine's 2 cores, so these figures
include the API server and controllers sharing the CPU with the benchmark.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration", "lab"))
sys.path.insert(0, os.path.join(ROOT, "lab"))

from gpufleet_lab import cli  # noqa: E402
from playbook import LAB_CONFIG, ansible_playbook  # noqa: E402

CLUSTER = "bench-jrn"
TEAM = "bench-jrn-team"
KUEUE = ("kueue.x-k8s.io", "v1beta2")
VCJOB = ("batch.volcano.sh", "v1alpha1", "jobs")
RUN_FOR = "pod-complete.stage.kwok.x-k8s.io/delay"


def _config(path):
    with open(LAB_CONFIG) as handle:
        config = yaml.safe_load(handle)
    config["cluster"]["name"] = CLUSTER
    config["scheduling"] = {"cohort": CLUSTER, "allow_overcommit": True}
    config["teams"] = [{"name": TEAM, "delete_namespace_on_removal": True, "volcano": {"weight": 1},
                        "quotas": {"a100": {"nvidia.com/gpu": {"nominal": 16, "lending_limit": 0}}}}]
    config["services"] = {"cert_manager": {"enabled": False}, "gpu_operator": {"enabled": True},
                          "monitoring": {"enabled": False}, "kueue": config["services"]["kueue"],
                          "volcano": config["services"]["volcano"]}
    with open(path, "w") as handle:
        yaml.safe_dump(config, handle, sort_keys=False)


def _manifest(config, example, *args):
    out = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "render.py"), example, "--config", config,
                          "--team", TEAM] + list(args), check=True, capture_output=True, text=True)
    body = yaml.safe_load(out.stdout)
    templates = [t["template"] for t in body["spec"]["tasks"]] if "tasks" in body["spec"] else [body["spec"]["template"]]
    for template in templates:
        template.setdefault("metadata", {}).setdefault("annotations", {})[RUN_FOR] = "1h"
    return body


def _admitted(custom, name):
    for wl in custom.list_namespaced_custom_object(*KUEUE, TEAM, "workloads")["items"]:
        owners = [o["name"] for o in wl["metadata"].get("ownerReferences") or []]
        if name in owners and any(c["type"] == "Admitted" and c["status"] == "True"
                                  for c in (wl.get("status") or {}).get("conditions") or []):
            return True
    return False


def _wait(predicate, timeout=120.0, interval=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    raise SystemExit("bench_journeys: timed out after %.0fs" % timeout)


def _clear(core, batch, custom):
    for job in batch.list_namespaced_job(TEAM).items:
        batch.delete_namespaced_job(job.metadata.name, TEAM, propagation_policy="Background")
    for job in custom.list_namespaced_custom_object(VCJOB[0], VCJOB[1], TEAM, VCJOB[2])["items"]:
        custom.delete_namespaced_custom_object(VCJOB[0], VCJOB[1], TEAM, VCJOB[2], job["metadata"]["name"])
    _wait(lambda: not core.list_namespaced_pod(TEAM).items
          and not custom.list_namespaced_custom_object(*KUEUE, TEAM, "workloads")["items"], interval=0.2)


def _stats(values):
    return {"n": len(values), "median_s": round(statistics.median(values), 3), "max_s": round(max(values), 3),
            "min_s": round(min(values), 3)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--gangs", type=int, default=5)
    args = parser.parse_args()
    if not cli.all_running():
        raise SystemExit("bench_journeys: the lab is not running (make lab-up)")
    from kubernetes import client
    api = cli.core_api()
    core, batch, custom = client.CoreV1Api(api), client.BatchV1Api(api), client.CustomObjectsApi(api)
    tmp = tempfile.mkdtemp(prefix="bench-journeys-")
    config = os.path.join(tmp, "config.yml")
    _config(config)
    result = ansible_playbook("playbooks/scheduling.yml", config=config)
    if result.rc != 0:
        raise SystemExit("bench_journeys: scheduling.yml failed:\n%s" % result)
    out = {"lab": "KWOK nodes, real Kueue v0.19.2 and Volcano v1.15.1", "cpus": os.cpu_count()}
    try:
        job = _manifest(config, "gpu-job", "--pool", "a100")
        latencies = []
        for i in range(args.jobs):
            body = dict(job, metadata=dict(job["metadata"], name="lat-%d" % i))
            body["metadata"].pop("generateName", None)
            batch.create_namespaced_job(TEAM, body)
            t0 = time.monotonic()
            _wait(lambda n="lat-%d" % i: _admitted(custom, n))
            latencies.append(time.monotonic() - t0)
            _clear(core, batch, custom)
        out["kueue_admission_sequential"] = _stats(latencies)
        burst = min(args.jobs, 16)
        t0 = time.monotonic()
        for i in range(burst):
            body = dict(job, metadata=dict(job["metadata"], name="burst-%d" % i))
            body["metadata"].pop("generateName", None)
            batch.create_namespaced_job(TEAM, body)
        _wait(lambda: all(_admitted(custom, "burst-%d" % i) for i in range(burst)), interval=0.05)
        out["kueue_admission_burst"] = {"jobs": burst, "all_admitted_s": round(time.monotonic() - t0, 3)}
        _clear(core, batch, custom)
        gang = _manifest(config, "volcano-gang", "--pool", "a100", "--replicas", "2", "--gpus", "1")
        placements = []
        for i in range(args.gangs):
            body = dict(gang, metadata=dict(gang["metadata"], name="gang-%d" % i))
            body["metadata"].pop("generateName", None)
            custom.create_namespaced_custom_object(VCJOB[0], VCJOB[1], TEAM, VCJOB[2], body)
            t0 = time.monotonic()

            def bound(name="gang-%d" % i):
                pods = core.list_namespaced_pod(TEAM, label_selector="volcano.sh/job-name=%s" % name).items
                return len(pods) == 2 and all(p.spec.node_name for p in pods)
            _wait(bound, interval=0.05)
            placements.append(time.monotonic() - t0)
            _clear(core, batch, custom)
        out["volcano_gang_placement"] = _stats(placements)
    finally:
        _clear(core, batch, custom)
        empty = os.path.join(tmp, "empty.yml")
        with open(config) as handle:
            cfg = yaml.safe_load(handle)
        cfg["teams"] = []
        with open(empty, "w") as handle:
            yaml.safe_dump(cfg, handle, sort_keys=False)
        ansible_playbook("playbooks/scheduling.yml", "--skip-tags", "kueue_install,volcano_install", config=empty)
    os.makedirs(os.path.join(ROOT, ".build", "bench"), exist_ok=True)
    with open(os.path.join(ROOT, ".build", "bench", "journeys.json"), "w") as handle:
        json.dump(out, handle, indent=2)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
