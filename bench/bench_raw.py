#!/usr/bin/env python3
"""The full converge from an empty lab: playbooks/site.yml against a raw script making the same calls.

    .venv/bin/python bench/bench_raw.py               # 2 rounds (A B A B), the lab config
    BENCH_RAW_ROUNDS=3 .venv/bin/python bench/bench_raw.py

The raw script is what a site without the collection would write: `helm upgrade --install --wait` of every
release with the values the roles computed, one `kubectl apply --server-side` of the objects the roles
apply, and `kubectl label`/`kubectl taint` of what the GPU layer sets on nodes. It is captured from a lab the
collection converged (so both sides install the same charts with the same values and end with the same
objects): releases in their install order (first revision's time) with `helm get values`, every object
labelled app.kubernetes.io/managed-by=gpufleet, and the node labels and taints whose managedFields name the
collection's field manager. What the raw script does not do, by construction: validation, the plan,
preflight checks, waits beyond `helm --wait` and retrying an apply that a webhook refuses while it starts,
check mode, pruning. So the ratio is the collection's overhead over the calls themselves.

Each round resets the lab (`lab.py down` then `up`: the cluster state is dropped, the nodes and the GPU
simulator come back), then times one side, resets again and times the other. Reset time is not counted.
Figures, not pass/fail: written to .build/bench/raw.json; the raw script itself to .build/bench/raw/.
The lab is left converged by the collection. It must not be used by anything else meanwhile.
"""
import json
import os
import shlex
import statistics
import subprocess
import sys
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "lab"))

from gpufleet_lab import settings  # noqa: E402
from bench_converge import CONFIG, LAB, env  # noqa: E402  (this folder: the same lab, config and environment)

OUT = os.path.join(ROOT, ".build", "bench", "raw")
LABEL = "app.kubernetes.io/managed-by=gpufleet"
MANAGER_PREFIX = "ansible"  # kubernetes.core's field manager (ansible-kubernetes-core / ansible-kubernetes)
DROP_META = ("uid", "resourceVersion", "managedFields", "creationTimestamp", "generation", "selfLink",
             "ownerReferences", "finalizers", "deletionTimestamp", "deletionGracePeriodSeconds")


def kubeconfig():
    with open(CONFIG) as handle:
        return os.path.expanduser(yaml.safe_load(handle)["cluster"]["kubeconfig"])


def run(cmd, check=True, **kwargs):
    done = subprocess.run(cmd, capture_output=True, text=True, env=env(), check=False, **kwargs)
    if check and done.returncode:
        raise SystemExit("%s failed (%d):\n%s\n%s" % (" ".join(cmd[:4]), done.returncode,
                                                     done.stdout[-3000:], done.stderr[-3000:]))
    return done


def kubectl(*args):
    return run([os.path.join(settings.BIN, "kubectl"), "--kubeconfig", kubeconfig()] + list(args))


def helm(*args):
    return run([os.path.join(settings.BIN, "helm"), "--kubeconfig", kubeconfig()] + list(args))


def reset():
    run(LAB + ["down"])
    run(LAB + ["up"])


def timed(cmd):
    start = time.monotonic()
    done = run(cmd)
    return time.monotonic() - start, done


def ansible():
    return timed([os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), "-i", CONFIG,
                  os.path.join(ROOT, "playbooks", "site.yml")])


def _clean(obj):
    meta = obj["metadata"]
    for key in DROP_META:
        meta.pop(key, None)
    annotations = meta.get("annotations") or {}
    annotations.pop("kubectl.kubernetes.io/last-applied-configuration", None)
    obj.pop("status", None)
    return obj


def _objects():
    kinds = kubectl("api-resources", "--verbs=list,create", "-o", "name").stdout.split()
    objects = []
    for kind in kinds:
        if kind in ("events", "events.events.k8s.io", "nodes"):
            continue
        listed = json.loads(kubectl("get", kind, "--all-namespaces", "-l", LABEL, "-o", "json").stdout)
        objects += [_clean(item) for item in listed["items"]]
    return objects


def _node_changes():
    """Per node: the labels and taints that the collection's field manager owns."""
    changes = {}
    for node in json.loads(kubectl("get", "nodes", "-o", "json").stdout)["items"]:
        labels, taints = set(), False
        for entry in node["metadata"].get("managedFields") or []:
            if not entry.get("manager", "").startswith(MANAGER_PREFIX):
                continue
            fields = entry.get("fieldsV1") or {}
            labels |= {k[2:] for k in (fields.get("f:metadata") or {}).get("f:labels") or {} if k.startswith("f:")}
            taints = taints or "f:taints" in (fields.get("f:spec") or {})
        if labels or taints:
            changes[node["metadata"]["name"]] = {
                "labels": {k: node["metadata"]["labels"][k] for k in sorted(labels) if k in node["metadata"]["labels"]},
                "taints": node["spec"].get("taints") or [] if taints else None}
    return changes


def capture():
    """Write the raw script for what the collection just converged; return its path and a summary."""
    os.makedirs(OUT, mode=0o700, exist_ok=True)
    releases = json.loads(helm("list", "--all-namespaces", "--output", "json").stdout)
    for release in releases:
        history = json.loads(helm("history", release["name"], "-n", release["namespace"], "-o", "json").stdout)
        release["first"] = history[0]["updated"]
    releases.sort(key=lambda r: r["first"])
    lines = ["#!/bin/sh", "# Generated by bench/bench_raw.py: the collection's converge as plain helm/kubectl calls.",
             "set -eu", "export KUBECONFIG=%s" % shlex.quote(kubeconfig())]
    for release in releases:
        values = os.path.join(OUT, "%s.%s.values.json" % (release["namespace"], release["name"]))
        with open(values, "w") as handle:
            handle.write(helm("get", "values", release["name"], "-n", release["namespace"], "-o", "json").stdout)
        chart = os.path.join(settings.CHARTS, release["chart"] + ".tgz")
        lines.append("helm upgrade --install %s %s -n %s --create-namespace -f %s --wait --timeout 10m" % (
            release["name"], shlex.quote(chart), release["namespace"], shlex.quote(values)))
    objects = _objects()
    # namespaces, Secrets, ConfigMaps, RBAC before the releases (the roles write them first); custom resources
    # after them, retried while a webhook that has only just started refuses, as a script would
    core = ("v1", "scheduling.k8s.io/v1", "rbac.authorization.k8s.io/v1")
    early = [o for o in objects if o["apiVersion"] in core]
    late = [o for o in objects if o["apiVersion"] not in core]
    declared = {o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"}
    extra_ns = sorted({o["metadata"]["namespace"] for o in early if o["metadata"].get("namespace")} - declared)
    early = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in extra_ns] + early
    for part, group in (("early", early), ("late", late)):
        if not group:
            continue
        manifest = os.path.join(OUT, "objects-%s.yml" % part)
        with open(manifest, "w") as handle:
            yaml.safe_dump_all(sorted(group, key=lambda o: o["kind"] != "Namespace"), handle, sort_keys=False)
        os.chmod(manifest, 0o600)
        line = ("ok=0; for i in $(seq 60); do if kubectl apply --server-side --force-conflicts -f %s >/dev/null; "
                "then ok=1; break; fi; sleep 2; done; [ $ok = 1 ]" % shlex.quote(manifest))
        if part == "early":
            lines.insert(4, line)
        else:
            lines.append(line)
    nodes = _node_changes()
    for name, change in sorted(nodes.items()):
        if change["labels"]:
            lines.append("kubectl label node %s --overwrite %s >/dev/null" % (
                name, " ".join(shlex.quote("%s=%s" % kv) for kv in change["labels"].items())))
        for taint in change["taints"] or []:
            lines.append("kubectl taint node %s --overwrite %s >/dev/null" % (
                name, shlex.quote("%s=%s:%s" % (taint["key"], taint.get("value", ""), taint["effect"]))))
    script = os.path.join(OUT, "converge.sh")
    with open(script, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    os.chmod(script, 0o700)
    return script, {"releases": [r["namespace"] + "/" + r["name"] for r in releases], "objects": len(objects),
                    "namespaces_created": extra_ns, "nodes_changed": len(nodes)}


def main():
    rounds = int(os.environ.get("BENCH_RAW_ROUNDS", "2"))
    reset()
    seconds, _ = ansible()  # also the capture's source
    script, summary = capture()
    print("captured: %d releases, %d objects, %d nodes -> %s" % (
        len(summary["releases"]), summary["objects"], summary["nodes_changed"], script), flush=True)
    pairs = []
    for index in range(rounds):
        reset()
        raw, _ = timed(["sh", script])
        reset()
        collection, _ = ansible()
        pairs.append({"collection_s": round(collection, 1), "raw_s": round(raw, 1),
                      "ratio": round(collection / raw, 3)})
        print("round %d: site.yml %.1f s, raw script %.1f s, ratio %.3f" % (
            index + 1, collection, raw, collection / raw), flush=True)
    result = {"config": CONFIG, "capture_converge_s": round(seconds, 1), "captured": summary, "rounds": pairs,
              "median_ratio": round(statistics.median(p["ratio"] for p in pairs), 3),
              "median_collection_s": round(statistics.median(p["collection_s"] for p in pairs), 1),
              "median_raw_s": round(statistics.median(p["raw_s"] for p in pairs), 1)}
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(os.path.join(os.path.dirname(OUT), "raw.json"), "w") as handle:
        json.dump(result, handle, indent=2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
