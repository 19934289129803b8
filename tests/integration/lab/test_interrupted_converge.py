"""Interrupted runs converge (issue 15 item 4): a MIG change is killed (SIGKILL to ansible-playbook's whole process
group, as a lost SSH session or a killed CI job would) at seeded random points, then run again.

The playbook killed is `playbooks/gpu.yml --tags mig` (validation, then the mig role): it holds the whole cordon
path (cordon, GPU pod check, drain, mig-parted ConfigMap, labels, wait, uncordon) and keeps the test at a few
minutes; the other layers have no cordon. GPUFLEET_KILL_PLAYBOOK=site kills the whole site.yml instead (not in
`make test`: most of an hour for 10 points). Each round flips the h100 pool between two layouts (both with
`mig.allow_disruption: true`) while a Deployment's GPU pod runs on one h100 node, so every uncut run cordons,
drains and uncordons. Kill points are task starts (the n-th `TASK [` line of the run), drawn with a seeded random
generator (GPUFLEET_KILL_SEED, default 15; GPUFLEET_KILL_POINTS, default 10), half of them inside the window from
the cordon to the uncordon, each followed by a random delay of up to 1.5 s. After each kill: the re-run converges
(rc 0, the layout's MIG capacity on the node), the run after it reports changed=0, and no node is cordoned or marked.
The points and what each kill left behind are printed and written to .build/bench/interrupted_converge.json
(interrupted_converge_site.json for site.yml).
Run time: about 22 s a round (killed run, re-run, changed=0 run): 222-240 s for 10 points on 2 cores with the lab
alone (session 9), several times that under heavy load; fewer points (GPUFLEET_KILL_POINTS) for a quicker look.
"""
import json
import os
import random
import re
import signal
import time

import pytest
import yaml

from lab_helpers import cordons, wait_for
from playbook import LAB_CONFIG, ROOT, ansible_playbook, killed_run

# GPUFLEET_KILL_PLAYBOOK=site: the same rounds against the whole of playbooks/site.yml (every layer of the lab
# config; kill points anywhere in it, half inside the MIG cordon window). Not part of `make test`: a round takes
# several minutes (a killed site.yml, its re-run, a changed=0 site.yml), so 10 points run for most of an hour.
SITE = os.environ.get("GPUFLEET_KILL_PLAYBOOK", "gpu") == "site"
PLAYBOOK = "playbooks/site.yml" if SITE else "playbooks/gpu.yml"
ARGS = ("-e", "mig_wait_delay=1") if SITE else ("--tags", "mig", "-e", "mig_wait_delay=1")
MARK = "gpufleet.io/cordoned-by"
LAYOUTS = ({"1g.10gb": 7}, {"1g.10gb": 4, "3g.40gb": 1})
SEED = int(os.environ.get("GPUFLEET_KILL_SEED", "15"))
POINTS = int(os.environ.get("GPUFLEET_KILL_POINTS", "10"))


def _config(tmp_path, index):
    with open(LAB_CONFIG) as fh:
        config = yaml.safe_load(fh)
    config["gpu_pools"]["h100"]["mig"]["layout"] = LAYOUTS[index]
    config["gpu_pools"]["h100"]["mig"]["allow_disruption"] = True
    path = tmp_path / ("config-%d.yml" % index)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _killed_run(config, kill_at, delay):
    """The playbook, SIGKILLed `delay` s after the kill_at-th task starts (0: not killed); (rc, tasks seen, output)."""
    return killed_run(PLAYBOOK, *ARGS, config=config, delay=delay,
                      kill_at=(lambda tasks: len(tasks) == kill_at) if kill_at else None)


def _uncordoned(result):
    """The nodes a run reports it uncordoned (the mig role's report task)."""
    found = re.search(r"Uncordoned \(cordoned by gpufleet.platform for a MIG change, target state reached\): (.*?);",
                      " ".join(result.stdout.split()))
    return [] if not found or found.group(1) == "none" else found.group(1).split(", ")


@pytest.fixture
def gpu_pod(lab, namespace):
    """A Deployment whose pod holds a 1g.10gb slice on the first h100 node (no toleration: a cordon keeps it off)."""
    node = [n["name"] for n in lab.gpu_nodes() if n["pool"] == "h100"][0]
    lab.apps.create_namespaced_deployment(namespace, {
        "metadata": {"name": "mig-user"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "mig-user"}},
                 "template": {"metadata": {"labels": {"app": "mig-user"}},
                              "spec": {"nodeSelector": {"kubernetes.io/hostname": node},
                                       "containers": [{"name": "c", "image": "registry.invalid/cuda:0",
                                                       "resources": {"limits": {"nvidia.com/mig-1g.10gb": "1"}}}]}}}})

    def running():
        return [p.metadata.name for p in lab.core.list_namespaced_pod(namespace).items
                if p.spec.node_name == node and p.status.phase == "Running" and not p.metadata.deletion_timestamp]
    yield node, running
    lab.apps.delete_namespaced_deployment("mig-user", namespace)


def test_killed_mig_changes_converge_on_the_next_run(lab, gpu_pod, tmp_path):
    node, running = gpu_pod
    configs = [_config(tmp_path, i) for i in range(len(LAYOUTS))]
    started = time.time()
    try:
        first = ansible_playbook(PLAYBOOK, *ARGS, config=configs[0])
        assert first.rc == 0, str(first)
        wait_for(running, timeout=120, what="the GPU pod Running on %s" % node)
        # an uncut change: the task sequence the kill points are drawn from
        rc, tasks, out = _killed_run(configs[1], kill_at=0, delay=0)
        assert rc == 0, out[-6000:]
        cordon = next(i for i, t in enumerate(tasks, 1) if "Cordon the nodes whose MIG layout changes" in t)
        uncordon = next(i for i, t in enumerate(tasks, 1) if "Uncordon them" in t)
        rng = random.Random(SEED)
        window = POINTS // 2
        points = [rng.randint(cordon + 1, uncordon) for _ in range(window)]  # after the cordon task started
        points += [rng.randint(1, len(tasks)) for _ in range(POINTS - window)]
        rng.shuffle(points)
        report = []
        for round_, point in enumerate(points):
            index = round_ % len(LAYOUTS)  # the state is LAYOUTS[1]: round 0 changes to LAYOUTS[0], and so on
            wait_for(running, timeout=120, what="the GPU pod Running on %s before round %d" % (node, round_))
            delay = round(rng.uniform(0, 1.5), 2)
            rc, seen, out = _killed_run(configs[index], kill_at=point, delay=delay)
            left = cordons(lab)
            entry = {"round": round_, "layout": LAYOUTS[index], "kill_at_task": point, "delay_s": delay,
                     "task": seen[-1] if seen else None, "rc": rc, "left_cordoned": left}
            rerun = ansible_playbook(PLAYBOOK, *ARGS, config=configs[index])
            assert rerun.rc == 0, "round %d (%s): the re-run failed\n%s" % (round_, entry, rerun)
            again = ansible_playbook(PLAYBOOK, *ARGS, config=configs[index])
            assert again.rc == 0 and again.changed == 0, "round %d (%s): not idempotent: %s\n%s" % (
                round_, entry, again.changed_tasks(), again)
            assert cordons(lab) == {}, "round %d (%s): left cordoned: %s" % (round_, entry, cordons(lab))
            capacity = lab.core.read_node(node).status.capacity.get("nvidia.com/mig-1g.10gb")
            assert capacity == str(8 * LAYOUTS[index]["1g.10gb"]), "round %d (%s): capacity %s" % (
                round_, entry, capacity)
            entry["rerun_uncordoned"] = _uncordoned(rerun)
            assert set(left) <= set(entry["rerun_uncordoned"]), "round %d (%s): the re-run did not report " \
                "uncordoning %s\n%s" % (round_, entry, sorted(left), rerun)
            report.append(entry)
            print(json.dumps(entry, sort_keys=True))
        killed = [e for e in report if e["rc"] == -signal.SIGKILL]
        assert len(killed) >= POINTS - 1, report  # a kill point at the very end may miss a finished run
        assert sum(1 for e in killed if e["left_cordoned"]) >= 3, "too few kills inside the cordon window: %s" % report
    finally:
        summary = {"playbook": PLAYBOOK, "args": list(ARGS), "seed": SEED, "points": POINTS,
                   "seconds": round(time.time() - started, 1), "rounds": locals().get("report", [])}
        os.makedirs(os.path.join(ROOT, ".build", "bench"), exist_ok=True)
        name = "interrupted_converge_site.json" if SITE else "interrupted_converge.json"
        with open(os.path.join(ROOT, ".build", "bench", name), "w") as fh:
            json.dump(summary, fh, indent=2, sort_keys=True)
        for name, state in cordons(lab).items():
            if state["mark"]:
                lab.core.patch_node(name, {"spec": {"unschedulable": None},
                                           "metadata": {"annotations": {MARK: None, "gpufleet.io/cordon-reason": None}}})
        # back to the lab's layout while the pod may still run (allow_disruption), then the lab config itself
        back = ansible_playbook(PLAYBOOK, *ARGS, config=configs[0])
        restore = ansible_playbook(PLAYBOOK, "--tags", "mig")
        assert back.rc == 0 and restore.rc == 0, "%s\n%s" % (back, restore)

