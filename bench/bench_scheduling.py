#!/usr/bin/env python3
"""Benchmark: the scheduling layer for 200 teams x 5 GPU flavors against the lab.

Reports (figures, not pass/fail; target from issue 6: idempotent re-run under 60 s):
  - render: tenancy.kueue_objects + volcano_queues in-process (median of N)
  - first apply:  ansible-playbook playbooks/scheduling.yml (objects only: --skip-tags *_install)
  - re-run (idempotent, changed=0), and --check --diff on the converged lab
  - objects applied; all in bulk (one kubernetes.core.k8s task per object group)

  make lab-up && .venv/bin/python bench/bench_scheduling.py [--teams 200 --runs 5] [--with-install]

The config is the lab config with 2 more pools (5 flavors), 200 teams with a quota in every pool, and
scheduling.allow_overcommit: true (200 teams cannot each get a share of the lab's 6 GPU nodes otherwise).
Objects are labelled gpufleet.io/cluster=bench-sched and deleted at the end.
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, ".build", "collections"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration", "lab"))

from ansible_collections.gpufleet.platform.plugins.module_utils import config_plan, tenancy  # noqa: E402
from playbook import LAB_CONFIG, ansible_playbook  # noqa: E402

CLUSTER = "bench-sched"


def generate(teams):
    with open(LAB_CONFIG) as handle:
        config = yaml.safe_load(handle)
    config["cluster"]["name"] = CLUSTER
    config["gpu_pools"]["h200"] = {"model": "h200-sxm5-141gb", "gpus_per_node": 8}
    config["gpu_pools"]["a100-40"] = {"model": "a100-sxm4-40gb", "gpus_per_node": 8}
    for i, pool in enumerate(("h200", "a100-40")):
        for n in range(2):
            config["nodes"].append({"name": "bench-%s-%d" % (pool, n), "address": "127.0.%d.%d" % (20 + i, n + 1),
                                    "roles": ["worker"], "pool": pool, "simulated": True})
    config["scheduling"] = {"allow_overcommit": True, "cohort": CLUSTER}
    config["teams"] = [{
        "name": "bench-team-%03d" % i, "priority": i,
        "quotas": {"a100": {"nvidia.com/gpu": {"nominal": 1, "borrowing_limit": 2}}, "h100": {"nvidia.com/mig-1g.10gb": 2},
                   "l40s": {"nvidia.com/gpu": 1}, "h200": {"nvidia.com/gpu": 1}, "a100-40": {"nvidia.com/gpu": 1}},
        "delete_namespace_on_removal": True} for i in range(teams)]
    config["services"] = {"cert_manager": {"enabled": False}, "gpu_operator": {"enabled": True},
                          "monitoring": {"enabled": False}, "kueue": {"enabled": True},
                          "volcano": {"enabled": True}}
    return config


def wait_for_namespaces_gone(timeout=600):
    """A previous run's cleanup deletes 200 namespaces; re-creating one while it terminates fails."""
    from kubernetes import client, config as kube_config
    with open(LAB_CONFIG) as handle:
        kubeconfig = os.path.expanduser(yaml.safe_load(handle)["cluster"]["kubeconfig"])
    core = client.CoreV1Api(kube_config.new_client_from_config(kubeconfig))
    deadline = time.monotonic() + timeout
    while core.list_namespace(label_selector="gpufleet.io/cluster=%s" % CLUSTER).items:
        if time.monotonic() > deadline:
            raise SystemExit("namespaces of %s still present after %d s" % (CLUSTER, timeout))
        time.sleep(2)


def timed(label, *args, **kwargs):
    start = time.monotonic()
    result = ansible_playbook(*args, timeout=3600, **kwargs)
    took = time.monotonic() - start
    if result.rc != 0:
        print(result)
        raise SystemExit("%s failed" % label)
    print("%-44s %7.1f s   changed=%d" % (label, took, result.changed))
    return took, result


def lab_lock():
    """Hold the lab test-session lock (tests/integration/lab/conftest.py) so no test session takes the lab
    down while the bench runs; bring the lab up when it is not running."""
    import fcntl
    sys.path.insert(0, os.path.join(ROOT, "lab"))
    from gpufleet_lab import cli, settings
    lock = open(settings.RUN.rstrip("/") + ".tests.lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    cli.up(LAB_CONFIG, quiet=True)
    return lock


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teams", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--with-install", action="store_true", help="also run the Helm installs")
    args = parser.parse_args()
    lock = lab_lock()  # noqa: F841 (held until exit)
    config = generate(args.teams)
    plan = config_plan.validate(config)
    renders = []
    for _ in range(args.runs):
        start = time.monotonic()
        kueue = tenancy.kueue_objects(plan)
        queues = tenancy.volcano_queues(plan)
        renders.append(time.monotonic() - start)
    count = sum(len(v) for v in kueue.values()) + len(queues)
    print("teams=%d flavors=%d objects=%d (namespaces, flavors, priority classes, ClusterQueues, LocalQueues, "
          "Volcano Queues)" % (args.teams, len(tenancy.flavor_pools(plan)), count))
    print("%-44s %7.3f s" % ("render (in-process, median)", statistics.median(renders)))
    skip = () if args.with_install else ("--skip-tags", "kueue_install,volcano_install")
    extra = {}  # scheduling.yml labels no nodes (the GPU layer owns gpufleet.io/pool); the bench pools have none
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.yml")
        with open(path, "w") as handle:
            yaml.safe_dump(config, handle)
        wait_for_namespaces_gone()
        try:
            timed("first apply", "playbooks/scheduling.yml", *skip, config=path, extra_vars=extra)
            took, result = timed("re-run (idempotent)", "playbooks/scheduling.yml", *skip, config=path,
                                 extra_vars=extra)
            print("re-run target < 60 s: %s" % ("met" if took < 60 and result.changed == 0 else "NOT met"))
            timed("--check --diff on the converged lab", "playbooks/scheduling.yml", *skip, config=path,
                  extra_vars=extra, check=True, diff=True)
        finally:
            config["teams"] = []
            with open(path, "w") as handle:
                yaml.safe_dump(config, handle)
            timed("removal of every team (cleanup)", "playbooks/scheduling.yml", *skip, config=path,
                  extra_vars=extra)


if __name__ == "__main__":
    main()
