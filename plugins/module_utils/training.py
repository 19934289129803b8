# -*- coding: utf-8 -*-
# Copyright: gpufleet.platform contributors
# Apache License 2.0 (see LICENSE)
"""Training (``services.training``: Kubeflow Trainer v2 with JobSet) and the Kueue integrations it brings.

Pure functions over plain data; no Ansible imports. ``issues`` checks what the schema cannot say: a team's
default runtime is one the config installs, and every Kueue integration has an operator, installed by this config
or declared present (``services.kueue.external_integrations``). ``kueue_integrations`` derives the frameworks Kueue
manages from what is installed; ``plan_service`` adds the runtimes and their pinned images to the service's plan.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.gpufleet.platform.plugins.module_utils import versions
from ansible_collections.gpufleet.platform.plugins.module_utils.config_issues import ConfigIssue

DEFAULT_RUNTIMES = ("torch-distributed",)
KUEUE_DEFAULT_INTEGRATIONS = ("batch/job",)  # tenancy.KUEUE_DEFAULT_INTEGRATIONS
# What Kueue manages when services.training is on: the TrainJob, and the JobSet it runs (Kueue's trainjob
# integration reads the JobSet the TrainJob would create).
TRAINING_INTEGRATIONS = ("jobset.x-k8s.io/jobset", "trainer.kubeflow.org/trainjob")
# Frameworks Kubernetes itself runs (no operator to install).
BUILTIN_INTEGRATIONS = ("batch/job", "pod", "deployment", "statefulset")
# The operator each other framework needs, for the messages.
OPERATORS = {
    "jobset.x-k8s.io/jobset": "JobSet (installed with services.training)",
    "trainer.kubeflow.org/trainjob": "Kubeflow Trainer v2 (services.training)",
    "kubeflow.org/pytorchjob": "the Kubeflow training-operator v1 (not installed by this collection)",
    "kubeflow.org/mpijob": "the MPI operator (not installed by this collection)",
    "ray.io/rayjob": "KubeRay (not installed by this collection)",
    "ray.io/raycluster": "KubeRay (not installed by this collection)",
    "leaderworkerset.x-k8s.io/leaderworkerset": "LeaderWorkerSet (not installed by this collection)",
}
CONFIGMAP = "gpufleet-training"  # per team with training defaults (the training role)


def _dict(value):
    return value if isinstance(value, dict) else {}


def _list(value):
    return value if isinstance(value, list) else []


def _enabled(services, name):
    return _dict(services.get(name)).get("enabled") is True


def installed_integrations(services):
    """Frameworks whose operator this config installs: Kubernetes' own, and Trainer's with services.training."""
    out = list(BUILTIN_INTEGRATIONS)
    if _enabled(services, "training"):
        out.extend(TRAINING_INTEGRATIONS)
    return out


def kueue_integrations(services):
    """The frameworks Kueue manages: services.kueue.integrations (default batch/job), plus the training ones
    when services.training is on (in that order, each once)."""
    kueue = _dict(services.get("kueue"))
    out = list(kueue.get("integrations") or KUEUE_DEFAULT_INTEGRATIONS)
    if _enabled(services, "training"):
        out.extend(f for f in TRAINING_INTEGRATIONS if f not in out)
    return out


def runtimes(service):
    """The runtimes services.training applies (default torch-distributed)."""
    names = service.get("runtimes")
    return list(DEFAULT_RUNTIMES if names is None else names)


def plan_service(service, teams=()):
    """services.training's plan: the service with ``runtimes`` (names), ``runtime_images`` (name -> pinned
    image, before any air-gap registry rewrite, which the role does like every other image) and ``team_defaults``
    (team_defaults of ``teams``, the plan's teams)."""
    names = runtimes(service)
    return dict(service, runtimes=names,
                runtime_images=dict((n, versions.TRAINING_RUNTIME_IMAGES[n]) for n in names
                                    if n in versions.TRAINING_RUNTIME_IMAGES),
                team_defaults=team_defaults(teams))


def team_defaults(teams):
    """[{team, namespace, default_runtime}] of the teams that set training defaults."""
    out = []
    for team in teams or []:
        runtime = _dict(team.get("training")).get("default_runtime")
        if runtime:
            out.append({"team": team["name"], "namespace": team.get("namespace") or team["name"],
                        "default_runtime": runtime})
    return out


def issues(config):
    """Every problem of the training settings and the Kueue integrations (a list of ConfigIssue)."""
    services = _dict(config.get("services"))
    training = _dict(services.get("training"))
    out = []
    installed = [n for n in runtimes(training) if n in versions.TRAINING_RUNTIME_IMAGES] \
        if _enabled(services, "training") else []
    for i, team in enumerate(_list(config.get("teams"))):
        runtime = _dict(_dict(team).get("training")).get("default_runtime")
        if not isinstance(runtime, str):
            continue
        path = "teams[%d].training.default_runtime" % i
        if not _enabled(services, "training"):
            out.append(ConfigIssue(path, "needs services.training.enabled: true (no ClusterTrainingRuntime is "
                                   "installed)", runtime, True))
        elif runtime not in installed:
            out.append(ConfigIssue(path, "is not a runtime services.training.runtimes installs; allowed: %s"
                                   % (", ".join(installed) or "none (the list is empty)"), runtime, True))
    kueue = _dict(services.get("kueue"))
    if not _enabled(services, "kueue"):
        return out
    have = set(installed_integrations(services)) | set(_list(kueue.get("external_integrations")))
    for i, framework in enumerate(_list(kueue.get("integrations"))):
        if not isinstance(framework, str) or framework in have:
            continue
        where = ("set services.training.enabled: true" if framework in TRAINING_INTEGRATIONS else
                 "remove it")
        out.append(ConfigIssue(
            "services.kueue.integrations[%d]" % i,
            "its operator, %s, is neither installed by this config nor declared present; %s, or list it in "
            "services.kueue.external_integrations when it is already in the cluster (allowed without that: %s)"
            % (OPERATORS.get(framework, framework), where, ", ".join(sorted(installed_integrations(services)))),
            framework, True))
    return out
