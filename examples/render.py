#!/usr/bin/env python3
"""Fill an example workload from config.yml, the way a team submits it.

    python examples/render.py --config config.yml --team research gpu-job [--pool a100] [--gpus 1] \
        | kubectl create -f -

The team's namespace, LocalQueue, Volcano queue, the pool and its tolerations come from the validated config
(the same plan the roles apply). Before printing anything it checks that the team can run the example: the pool
exists, offers the resource, the team has a quota for it there (Kueue examples), Volcano is on (Volcano example).
When it cannot, it names the key of config.yml to add or fix, prints no manifest and exits 2.
"""
import argparse
import json
import os
import string
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def _import_collection():
    """The collection's module_utils: from an installed collection (examples/ inside
    ansible_collections/gpufleet/platform) or from a checkout (its .build/collections link, `make venv`)."""
    parent = os.path.dirname(HERE)
    for root in (os.path.dirname(os.path.dirname(os.path.dirname(parent))),
                 os.path.join(parent, ".build", "collections")):
        if os.path.isdir(os.path.join(root, "ansible_collections", "gpufleet", "platform")) and root not in sys.path:
            sys.path.insert(0, root)
    try:
        from ansible_collections.gpufleet.platform.plugins.module_utils import config_issues, config_plan, tenancy
        from ansible_collections.gpufleet.platform.plugins.module_utils import storage
    except ImportError as exc:
        sys.exit("render.py: cannot import the gpufleet.platform collection (%s): install it, or run `make venv` "
                 "in a checkout" % exc)
    return config_issues, config_plan, tenancy, storage


# example -> (file, what it asks: "gpu" whole GPUs, "mig" a MIG profile, "shared" a share of a shared pool;
#             through Kueue or Volcano)
EXAMPLES = {
    "gpu-job": ("gpu-job/job.yaml", "gpu", "kueue"),
    "mig-job": ("mig-job/job.yaml", "mig", "kueue"),
    "shared-gpu-job": ("shared-gpu-job/job.yaml", "shared", "kueue"),
    "kueue-gang": ("kueue-gang/job.yaml", "gpu", "kueue"),
    "volcano-gang": ("volcano-gang/vcjob.yaml", "gpu", "volcano"),
    # a PyTorch distributed TrainJob (Kubeflow Trainer v2, services.training), REPLICAS nodes x GPUS, through Kueue
    "trainjob": ("trainjob/trainjob.yaml", "gpu", "kueue"),
    # a PVC on the platform's StorageClass and a Job that loads a model's weights into it (storage_uri: pvc://)
    "model-weights-pvc": ("model-weights-pvc/loader.yaml", "weights", None),
}
DEFAULT_IMAGE = "nvcr.io/nvidia/cuda:12.9.1-base-ubuntu24.04"
LOADER_IMAGE = "docker.io/library/python:3.12-slim"
DEFAULT_MODEL = "Qwen/Qwen2.5-0.5B-Instruct"


class ExampleError(Exception):
    """What stops an example: the message names the config.yml key to add or fix."""


def _quota(team, pool, resource):
    entry = (team.get("quotas") or {}).get(pool, {}).get(resource)
    if entry is None:
        return None
    return entry["nominal"] + (entry.get("borrowing_limit") or 0) if isinstance(entry, dict) else entry


def _pick_pool(plan, team, index, kind, resource, pool):
    pools = plan["pools"]
    if pool is not None:
        if pool not in pools:
            raise ExampleError("gpu_pools.%s: no such pool in config.yml (pools: %s)"
                               % (pool, ", ".join(sorted(pools)) or "none"))
        return pool
    wanted = [name for name in sorted((team.get("quotas") or {}))
              if resource in (team["quotas"][name] or {}) and name in pools
              and (kind != "shared" or pools[name]["sharing"].get("mode", "none") != "none")]
    if not wanted:
        raise ExampleError('teams[%d].quotas: team %s has no %s quota in any %spool; add teams[%d].quotas.<pool>'
                           '["%s"] to config.yml' % (index, team["name"], resource,
                                                     "shared " if kind == "shared" else "", index, resource))
    return wanted[0]


def _weights(config, storage, team, name, image, model, size, claim, model_dir):
    """The values of model-weights-pvc: the claim on the platform's StorageClass (config.yml storage:)."""
    problems = storage.issues(config)
    if problems:
        raise ExampleError("config.yml is not valid; run the validate playbook first:\n%s"
                           % "\n".join("  - %s" % p for p in problems))
    plan = storage.plan(config)
    if not plan["class_name"]:
        raise ExampleError("storage: config.yml has no storage section, so the claim would get whatever the cluster "
                           "defaults to; set storage.backend (local-path, nfs) or storage.existing: NAME "
                           "(docs/storage.md)")
    shared = plan["backend"] == "nfs" and plan["class_name"] == plan.get("installed_class")
    model = model or DEFAULT_MODEL
    return {"NAME": name or "load-weights", "NAMESPACE": team["namespace"], "CLAIM": claim or "model-weights",
            "STORAGE_CLASS": plan["class_name"], "ACCESS_MODE": "ReadWriteMany" if shared else "ReadWriteOnce",
            "SIZE": size or "20Gi", "MODEL": model, "MODEL_DIR": model_dir or model.rsplit("/", 1)[-1].lower(),
            "IMAGE": image or LOADER_IMAGE}


def _training(services, team, runtime, image, plan_airgap):
    """(runtime, image) of the trainjob example: the runtime config installs (--runtime, else the team's default,
    else the first of services.training.runtimes) and its pinned image unless --image."""
    training = services.get("training") or {}
    if not training.get("enabled"):
        raise ExampleError("services.training.enabled: Kubeflow Trainer is off; set it to true to submit a TrainJob")
    installed = training.get("runtimes") or []
    runtime = runtime or (team.get("training") or {}).get("default_runtime") or (installed[:1] or [None])[0]
    if runtime not in installed:
        raise ExampleError("services.training.runtimes: runtime %r is not installed (installed: %s); add it there or "
                           "pick one with --runtime" % (runtime, ", ".join(installed) or "none"))
    if image:
        return runtime, image
    image = training["runtime_images"][runtime]
    registry = (plan_airgap or {}).get("image_registry") if (plan_airgap or {}).get("enabled") else None
    # from the air-gap registry, as the training role applies the runtime's image (its registry part replaced)
    return runtime, ("%s/%s" % (registry, image.split("/", 1)[1]) if registry else image)


def render(config, example, team_name, pool=None, gpus=1, replicas=2, profile=None, name=None, image=None,
           model=None, size=None, claim=None, model_dir=None, runtime=None):
    """The manifest text of ``example`` for ``team_name``; raise ExampleError naming the config key to fix."""
    config_issues, config_plan, tenancy, storage = _import_collection()
    if example not in EXAMPLES:
        raise ExampleError("no example %r (examples: %s)" % (example, ", ".join(sorted(EXAMPLES))))
    path, kind, via = EXAMPLES[example]
    try:
        plan = config_plan.validate(config)
    except config_issues.ConfigValidationError as exc:
        raise ExampleError("config.yml is not valid; run the validate playbook first:\n%s" % exc) from None
    teams = [t["name"] for t in plan["teams"]]
    if team_name not in teams:
        raise ExampleError("teams: no team %r in config.yml (teams: %s); add it under teams"
                           % (team_name, ", ".join(teams) or "none"))
    index = teams.index(team_name)
    team = plan["teams"][index]
    if kind == "weights":
        values = _weights(config, storage, team, name, image, model, size, claim, model_dir)
        with open(os.path.join(HERE, path)) as handle:
            return string.Template(handle.read()).substitute(values)
    if kind == "mig":
        if not profile:
            raise ExampleError("mig-job needs --profile (a MIG profile such as 1g.10gb)")
        resource = "nvidia.com/mig-%s" % profile
    else:
        resource = "nvidia.com/gpu"
    pool = _pick_pool(plan, team, index, kind, resource, pool)
    offered = plan["pools"][pool]["resources_per_node"]
    if resource not in offered:
        raise ExampleError("gpu_pools.%s: the pool offers no %s (per node: %s); pick a pool whose mig.layout "
                           "has it" % (pool, resource, ", ".join("%s=%s" % kv for kv in sorted(offered.items()))
                                       or "nothing"))
    if kind == "shared" and plan["pools"][pool]["sharing"].get("mode", "none") == "none":
        raise ExampleError("gpu_pools.%s.sharing.mode: the pool is not shared (none); set time-slicing or mps, "
                           "or pick a shared pool" % pool)
    if gpus > offered[resource]:
        raise ExampleError("--gpus %d: a node of pool %s has %d %s; one pod cannot ask more"
                           % (gpus, pool, offered[resource], resource))
    services = plan["services"]
    if via == "kueue":
        if not services.get("kueue", {}).get("enabled"):
            raise ExampleError("services.kueue.enabled: Kueue is off; set it to true to submit to a LocalQueue")
        asked = gpus * (replicas if example in ("kueue-gang", "trainjob") else 1)
        quota = _quota(team, pool, resource)
        if quota is None:
            raise ExampleError('teams[%d].quotas.%s["%s"]: team %s has no quota for it in pool %s; add it to '
                               'config.yml' % (index, pool, resource, team_name, pool))
        if asked > quota:
            raise ExampleError('teams[%d].quotas.%s["%s"]: the job asks %d but the team may use at most %s '
                               '(nominal + borrowing_limit); it would never be admitted'
                               % (index, pool, resource, asked, quota))
    elif not services.get("volcano", {}).get("enabled"):
        raise ExampleError("services.volcano.enabled: Volcano is off; set it to true to submit a Volcano job")
    if example == "trainjob":
        runtime, image = _training(services, team, runtime, image, plan.get("airgap"))
    values = {
        "RUNTIME": runtime or "",
        "NAME": name or example, "NAMESPACE": team["namespace"], "QUEUE": tenancy.LOCAL_QUEUE,
        "VOLCANO_QUEUE": team["name"], "POOL": pool, "RESOURCE": resource, "GPUS": str(gpus),
        "REPLICAS": str(replicas), "IMAGE": image or DEFAULT_IMAGE,
        "TOLERATIONS": json.dumps(tenancy.pool_tolerations(plan["pools"][pool])),
    }
    with open(os.path.join(HERE, path)) as handle:
        return string.Template(handle.read()).substitute(values)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("example", help="one of: %s" % ", ".join(sorted(EXAMPLES)))
    parser.add_argument("--config", default=os.environ.get("CONFIG", "config.yml"), help="config.yml")
    parser.add_argument("--team", required=True)
    parser.add_argument("--pool", help="pool (default: the first pool the team has a quota for the resource in)")
    parser.add_argument("--gpus", type=int, default=1, help="GPUs (or slices, or shares) per pod")
    parser.add_argument("--replicas", type=int, default=2, help="pods of a gang example")
    parser.add_argument("--profile", help="MIG profile of mig-job, e.g. 1g.10gb")
    parser.add_argument("--name", help="name prefix of the job")
    parser.add_argument("--image", help="container image (default %s; model-weights-pvc: %s)"
                        % (DEFAULT_IMAGE, LOADER_IMAGE))
    parser.add_argument("--runtime", help="trainjob: ClusterTrainingRuntime (default: the team's "
                        "teams[].training.default_runtime, else the first of services.training.runtimes)")
    parser.add_argument("--model", help="model-weights-pvc: Hugging Face repository (default %s)" % DEFAULT_MODEL)
    parser.add_argument("--size", help="model-weights-pvc: claim size (default 20Gi)")
    parser.add_argument("--claim", help="model-weights-pvc: claim name (default model-weights)")
    parser.add_argument("--model-dir", help="model-weights-pvc: directory in the claim (default the repository name)")
    args = parser.parse_args(argv)
    import yaml
    try:
        with open(args.config) as handle:
            config = yaml.safe_load(handle)
    except (OSError, yaml.YAMLError) as exc:
        print("render.py: cannot read %s: %s" % (args.config, exc), file=sys.stderr)
        return 2
    if args.gpus < 1 or args.replicas < 1:
        print("render.py: --gpus and --replicas must be at least 1", file=sys.stderr)
        return 2
    try:
        text = render(config, args.example, args.team, pool=args.pool, gpus=args.gpus, replicas=args.replicas,
                      profile=args.profile, name=args.name, image=args.image, model=args.model, size=args.size,
                      claim=args.claim, model_dir=args.model_dir, runtime=args.runtime)
    except ExampleError as exc:
        print("render.py: %s" % exc, file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
