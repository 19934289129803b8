#!/usr/bin/env python3
"""Benchmark: validate a generated config.yml with 1,000 nodes, 20 GPU pools and 50 teams.

Reports (figures, not pass/fail; targets from the foundation issue):
  - the validation logic alone (config_plan.validate, in-process, median of N runs)  target < 1 s
  - the whole `ansible-playbook -i generated.yml playbooks/validate.yml` run            target < 15 s

  .venv/bin/python bench/bench_validate.py [--nodes 1000 --pools 20 --teams 50 --runs 5]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, ".build", "collections"))

from ansible_collections.gpufleet.platform.plugins.module_utils import config_plan  # noqa: E402

MODELS = [  # (model, gpus per node, MIG layout or None, sharing)
    ("a100-sxm4-80gb", 8, None, None),
    ("h100-sxm5-80gb", 8, {"3g.40gb": 1, "2g.20gb": 1, "1g.10gb": 2}, None),
    ("h100-sxm5-80gb", 8, "all-1g.10gb", None),
    ("a100-sxm4-40gb", 8, "all-balanced", None),
    ("l40s", 4, None, {"mode": "time-slicing", "replicas": 4}),
    ("h200-sxm5-141gb", 8, None, None),
    ("l4", 8, None, {"mode": "mps", "replicas": 2}),
    ("a30", 4, {"2g.12gb": 1, "1g.6gb": 2}, None),
]


def generate(nodes, pools, teams):
    config = {
        "plugin": "gpufleet.platform.config",
        "cluster": {"name": "bench", "pod_cidr": "10.64.0.0/12", "service_cidr": "10.96.0.0/16"},
        "nodes": [{"name": "cp-%d" % i, "address": "100.64.0.%d" % (i + 1), "roles": ["control-plane", "etcd"]}
                  for i in range(3)],
        "gpu_pools": {},
        "teams": [],
        "services": {"kueue": {"enabled": True}, "monitoring": {"enabled": True}},
        "secrets": {"grafana_admin_password": {"generate": True}},
    }
    for p in range(pools):
        model, gpus, layout, sharing = MODELS[p % len(MODELS)]
        pool = {"model": model, "gpus_per_node": gpus}
        if layout:
            pool["mig"] = {"strategy": "mixed", "layout": layout}
        if sharing:
            pool["sharing"] = sharing
        config["gpu_pools"]["pool-%02d" % p] = pool
    workers = nodes - 3
    for i in range(workers):
        config["nodes"].append({"name": "gpu-%04d" % i, "address": "100.65.%d.%d" % (i // 250, i % 250 + 1),
                                "roles": ["worker"], "pool": "pool-%02d" % (i % pools)})
    plan = config_plan.validate(config)  # capacity per pool, to give teams quotas that fit
    for t in range(teams):
        quotas = {}
        for p in (t % pools, (t + 7) % pools):
            name = "pool-%02d" % p
            resource, capacity = sorted(plan["pools"][name]["capacity"].items())[0]
            quotas.setdefault(name, {})[resource] = max(capacity // (teams // 2 + 2), 0)
        config["teams"].append({"name": "team-%02d" % t, "priority": t, "quotas": quotas,
                                "volcano": {"weight": 1 + t % 4, **({"parent": "team-%02d" % (t - 1)} if t % 5 else {})}})
    return config


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--pools", type=int, default=20)
    parser.add_argument("--teams", type=int, default=50)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    config = generate(args.nodes, args.pools, args.teams)
    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        config_plan.validate(config)
        times.append(time.perf_counter() - start)
    print("validation logic: %d nodes, %d pools, %d teams: median %.3f s (min %.3f, max %.3f, %d runs)"
          % (args.nodes, args.pools, args.teams, statistics.median(times), min(times), max(times), args.runs))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "config.yml")
        with open(path, "w") as handle:
            yaml.safe_dump(config, handle, sort_keys=False)
        env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
                   ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".build", "collections"))
        start = time.perf_counter()
        result = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", path,
                                 "playbooks/validate.yml"], cwd=ROOT, env=env, capture_output=True, text=True,
                                check=False)
        elapsed = time.perf_counter() - start
        if result.returncode:
            print(result.stdout[-3000:], result.stderr[-3000:])
            return 1
    print("whole validate.yml run (inventory plugin + validation + plan): %.2f s" % elapsed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
