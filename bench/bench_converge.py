#!/usr/bin/env python3
"""The idempotent re-run of the whole platform (playbooks/site.yml, changed=0): time, tasks, slowest tasks.

    .venv/bin/python bench/bench_converge.py                       # the lab config: 9 nodes, 2 teams
    BENCH_CONVERGE_CASES=lab:2,lab:200,1000:2 .venv/bin/python bench/bench_converge.py
    BENCH_CONVERGE_RERUNS=3 ...                                     # re-runs per case (median reported)

A case is NODES:TEAMS: NODES is ``lab`` (inventories/lab/config.yml) or a GPU node count (``lab.py
gen-config``); TEAMS adds teams to the config's own (each 1 A100 of quota, scheduling.allow_overcommit on)
up to that many. For each case: `lab.py up` with the case's config (the running lab gains or loses nodes),
`site.yml` once to converge, then the re-runs, each with ansible.posix.profile_tasks: wall time, the recap
(changed must be 0), tasks run and skipped, seconds per role and the 10 slowest tasks. The figures are
written to .build/bench/converge.json. The lab is left with the lab config converged again.

Figures, not pass/fail: the machine is shared (report ratios between cases of one run).
"""
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "lab"))

from gpufleet_lab import settings  # noqa: E402

LAB = [sys.executable, os.path.join(ROOT, "lab", "lab.py")]
CONFIG = os.path.join(ROOT, "inventories", "lab", "config.yml")
PLAYBOOK = [os.path.join(ROOT, ".venv", "bin", "ansible-playbook")]
STAMP = re.compile(r"^\w+ \d+ \w+ \d+\s+[\d:]+ \+\d{4} \((\d+):(\d+):([\d.]+)\)")
RECAP = re.compile(r"ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)")


def env(profile=False):
    out = dict(os.environ)
    out.update(PATH=settings.BIN + os.pathsep + out.get("PATH", ""), ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".build", "collections"), ANSIBLE_NOCOLOR="1")
    if profile:
        out.update(ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks", PROFILE_TASKS_TASK_OUTPUT_LIMIT="0")
    return out


def case_config(nodes, teams, workdir):
    path = CONFIG
    if nodes != "lab":
        path = os.path.join(workdir, "lab-%s.yml" % nodes)
        subprocess.run(LAB + ["gen-config", str(nodes), "--out", path], check=True, capture_output=True)
    with open(path) as handle:
        config = yaml.safe_load(handle)
    extra = teams - len(config["teams"])
    if extra > 0:
        config.setdefault("scheduling", {})["allow_overcommit"] = True
        pool = next(name for name, p in config["gpu_pools"].items()  # a pool of whole, unshared GPUs
                    if (p.get("mig") or {}).get("layout", "all-disabled") == "all-disabled"
                    and (p.get("sharing") or {}).get("mode", "none") == "none")
        for i in range(extra):
            config["teams"].append({"name": "bench-team-%03d" % i, "quotas": {pool: {"nvidia.com/gpu": 1}}})
    out = os.path.join(workdir, "case-%s-%d.yml" % (nodes, teams))
    with open(out, "w") as handle:
        yaml.safe_dump(config, handle, sort_keys=False)
    return out, config


def profile(stdout):
    """(seconds per role, 10 slowest tasks) from profile_tasks' per-task stamps."""
    by_role, slowest, current = Counter(), [], None
    for line in stdout.splitlines():
        match = STAMP.match(line)
        if match and current:
            seconds = int(match.group(1)) * 3600 + int(match.group(2)) * 60 + float(match.group(3))
            role = current.split(" : ")[0][len("TASK ["):] if " : " in current else "(play)"
            by_role[role] += seconds
            slowest.append((round(seconds, 2), current[len("TASK ["):].rstrip("]* ")))
        if line.startswith("TASK ["):
            current = line
        elif match:
            current = None
    slowest.sort(key=lambda item: -item[0])
    return {k: round(v, 1) for k, v in by_role.most_common()}, slowest[:10]


def playbook(config, profile_tasks=False):
    start = time.time()
    res = subprocess.run(PLAYBOOK + ["-i", config, os.path.join(ROOT, "playbooks", "site.yml")], cwd=ROOT,
                         env=env(profile_tasks), capture_output=True, text=True, check=False)
    wall = time.time() - start
    match = RECAP.search(res.stdout)
    recap = dict(zip(("ok", "changed", "unreachable", "failed", "skipped"), map(int, match.groups()))) if match else None
    if res.returncode != 0 or recap is None:
        raise SystemExit("site.yml failed (rc %d) with %s:\n%s\n%s" % (res.returncode, config, res.stdout[-4000:],
                                                                     res.stderr[-2000:]))
    return wall, recap, res.stdout


def bench_case(nodes, teams, reruns, workdir):
    config, loaded = case_config(nodes, teams, workdir)
    res = subprocess.run(LAB + ["up", "--config", config], capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise SystemExit("lab up failed for %s: %s" % (config, res.stderr[-2000:]))
    converge_s, converge, _ = playbook(config)
    runs = []
    for _ in range(reruns):
        wall, recap, stdout = playbook(config, profile_tasks=True)
        by_role, slowest = profile(stdout)
        runs.append({"wall_s": round(wall, 1), "recap": recap, "roles_s": by_role, "slowest": slowest})
    walls = [r["wall_s"] for r in runs]
    last = runs[-1]
    return {"case": "%s:%d" % (nodes, teams), "nodes": len(loaded["nodes"]),
            "gpu_nodes": sum(1 for n in loaded["nodes"] if n.get("pool")), "teams": len(loaded["teams"]),
            "converge_s": round(converge_s, 1), "converge_changed": converge["changed"],
            "rerun_median_s": statistics.median(walls), "rerun_s": walls,
            "rerun_changed": [r["recap"]["changed"] for r in runs],
            "tasks_run": last["recap"]["ok"], "tasks_skipped": last["recap"]["skipped"],
            "roles_s": last["roles_s"], "slowest": last["slowest"]}


def main():
    cases = []
    for item in os.environ.get("BENCH_CONVERGE_CASES", "lab:2").split(","):
        nodes, _, teams = item.partition(":")
        cases.append((nodes if nodes == "lab" else int(nodes), int(teams or 2)))
    reruns = int(os.environ.get("BENCH_CONVERGE_RERUNS", "3"))
    workdir = tempfile.mkdtemp(prefix="bench-converge-")
    results = {"reruns_per_case": reruns, "cpus": os.cpu_count(), "load_1m_at_start": os.getloadavg()[0],
               "cases": []}
    try:
        for nodes, teams in cases:
            results["cases"].append(bench_case(nodes, teams, reruns, workdir))
            print(json.dumps(results["cases"][-1]), flush=True)
    finally:
        subprocess.run(LAB + ["up", "--config", CONFIG], capture_output=True, check=False)
        if any(c != ("lab", 2) for c in cases):
            playbook(CONFIG)
    base = results["cases"][0]["rerun_median_s"] if results["cases"] else None
    for case in results["cases"]:
        case["rerun_ratio_to_first_case"] = round(case["rerun_median_s"] / base, 2) if base else None
    os.makedirs(os.path.join(ROOT, ".build", "bench"), exist_ok=True)
    with open(os.path.join(ROOT, ".build", "bench", "converge.json"), "w") as handle:
        json.dump(results, handle, indent=2)
    print(json.dumps({c["case"]: {k: c[k] for k in ("rerun_median_s", "rerun_ratio_to_first_case", "tasks_run",
                                                    "tasks_skipped")} for c in results["cases"]}, indent=2))


if __name__ == "__main__":
    main()
