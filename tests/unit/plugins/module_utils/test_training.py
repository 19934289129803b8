"""services.training and the Kueue integrations (module_utils/training.py): every refused input with its exact message
(key path, value, what is allowed), the integrations Kueue is given, and the plan."""
import copy
import os

import pytest
import yaml

from ansible_collections.gpufleet.platform.plugins.module_utils import config_plan, config_rules, training, versions
from ansible_collections.gpufleet.platform.plugins.module_utils.config_issues import ConfigValidationError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
ALLOWED = "batch/job, deployment, jobset.x-k8s.io/jobset, pod, statefulset, trainer.kubeflow.org/trainjob"
ALLOWED_OFF = "batch/job, deployment, pod, statefulset"


@pytest.fixture
def example():
    with open(os.path.join(ROOT, "config.example.yml")) as handle:
        return yaml.safe_load(handle)


def messages(config):
    return [str(issue) for issue in config_rules.check(config)]


def test_the_example_is_valid_and_kueue_manages_trainjobs(example):
    plan = config_plan.validate(example)
    assert plan["services"]["kueue"]["integrations"] == ["batch/job", "jobset.x-k8s.io/jobset",
                                                         "trainer.kubeflow.org/trainjob"]
    service = plan["services"]["training"]
    assert service["runtimes"] == ["torch-distributed"]
    assert service["runtime_images"] == {"torch-distributed": versions.TRAINING_RUNTIME_IMAGES["torch-distributed"]}
    assert service["team_defaults"] == [{"team": "interns", "namespace": "interns",
                                         "default_runtime": "torch-distributed"}]
    assert service["namespace"] == "kubeflow-system"
    assert [c["name"] for c in service["charts"]] == ["kubeflow-trainer"]
    assert service["charts"][0]["version"] == "2.3.0"


def test_without_training_kueue_keeps_what_config_lists(example):
    example["services"]["training"]["enabled"] = False
    for team in example["teams"]:
        team.pop("training", None)
    assert config_plan.validate(example)["services"]["kueue"]["integrations"] == ["batch/job"]
    example["services"]["kueue"].pop("integrations")
    assert config_plan.validate(example)["services"]["kueue"]["integrations"] == ["batch/job"]


def test_listed_training_integrations_are_not_doubled(example):
    example["services"]["kueue"]["integrations"] = ["trainer.kubeflow.org/trainjob", "batch/job"]
    assert config_plan.validate(example)["services"]["kueue"]["integrations"] == [
        "trainer.kubeflow.org/trainjob", "batch/job", "jobset.x-k8s.io/jobset"]


@pytest.mark.parametrize("framework,operator", [
    ("kubeflow.org/pytorchjob", "the Kubeflow training-operator v1 (not installed by this collection)"),
    ("ray.io/rayjob", "KubeRay (not installed by this collection)"),
    ("leaderworkerset.x-k8s.io/leaderworkerset", "LeaderWorkerSet (not installed by this collection)"),
])
def test_an_integration_without_its_operator_is_refused(example, framework, operator):
    example["services"]["kueue"]["integrations"] = ["batch/job", framework]
    assert messages(example) == [
        "services.kueue.integrations[1]: its operator, %s, is neither installed by this config nor declared present; "
        "remove it, or list it in services.kueue.external_integrations when it is already in the cluster (allowed "
        "without that: %s) (got '%s')" % (operator, ALLOWED, framework)]
    example["services"]["kueue"]["external_integrations"] = [framework]
    assert messages(example) == []


def test_a_training_integration_without_training_is_refused(example):
    example["services"]["training"]["enabled"] = False
    for team in example["teams"]:
        team.pop("training", None)
    example["services"]["kueue"]["integrations"] = ["jobset.x-k8s.io/jobset", "batch/job",
                                                    "trainer.kubeflow.org/trainjob"]
    assert messages(example) == [
        "services.kueue.integrations[0]: its operator, JobSet (installed with services.training), is neither "
        "installed by this config nor declared present; set services.training.enabled: true, or list it in "
        "services.kueue.external_integrations when it is already in the cluster (allowed without that: %s) "
        "(got 'jobset.x-k8s.io/jobset')" % ALLOWED_OFF,
        "services.kueue.integrations[2]: its operator, Kubeflow Trainer v2 (services.training), is neither installed "
        "by this config nor declared present; set services.training.enabled: true, or list it in "
        "services.kueue.external_integrations when it is already in the cluster (allowed without that: %s) "
        "(got 'trainer.kubeflow.org/trainjob')" % ALLOWED_OFF]


def test_integrations_are_not_checked_with_kueue_off(example):
    example["services"]["kueue"]["enabled"] = False
    example["services"]["kueue"]["integrations"] = ["ray.io/rayjob"]
    assert not [m for m in messages(example) if "integrations" in m]


def test_an_unknown_runtime_in_a_teams_defaults_is_refused(example):
    example["teams"][0]["training"] = {"default_runtime": "torchtune"}
    assert messages(example) == [
        "teams[0].training.default_runtime: is not a runtime services.training.runtimes installs; allowed: "
        "torch-distributed (got 'torchtune')"]
    example["services"]["training"]["runtimes"] = ["torch-distributed", "jax-distributed"]
    example["teams"][0]["training"] = {"default_runtime": "deepspeed-distributed"}
    assert messages(example) == [
        "teams[0].training.default_runtime: is not a runtime services.training.runtimes installs; allowed: "
        "torch-distributed, jax-distributed (got 'deepspeed-distributed')"]


def test_a_teams_default_runtime_needs_training(example):
    example["services"]["training"]["enabled"] = False
    assert messages(example) == [
        "teams[2].training.default_runtime: needs services.training.enabled: true (no ClusterTrainingRuntime is "
        "installed) (got 'torch-distributed')"]


def test_a_default_runtime_with_no_runtimes_installed(example):
    example["services"]["training"]["runtimes"] = []
    assert messages(example) == [
        "teams[2].training.default_runtime: is not a runtime services.training.runtimes installs; allowed: none (the "
        "list is empty) (got 'torch-distributed')"]


@pytest.mark.parametrize("mutate,expected", [
    (lambda c: c["services"]["training"].update(runtimes=["torchx"]),
     "services.training.runtimes[0]: must be one of: torch-distributed, jax-distributed, deepspeed-distributed "
     "(got 'torchx')"),
    (lambda c: c["services"]["training"].update(runtimes=["torch-distributed", "torch-distributed"]),
     "services.training.runtimes"),
    (lambda c: c["services"]["kueue"].update(external_integrations=["ray.io/rayservice"]),
     "services.kueue.external_integrations[0]: must be one of:"),
    (lambda c: c["teams"][0].update(training={"default_runtime": "Torch"}), "teams[0].training.default_runtime"),
    (lambda c: c["teams"][0].update(training={"runtime": "torch-distributed"}), "teams[0].training"),
])
def test_schema_refuses(example, mutate, expected):
    mutate(example)
    with pytest.raises(ConfigValidationError) as err:
        config_plan.validate(example)
    assert expected in str(err.value)


def test_team_defaults_use_the_team_namespace():
    teams = [{"name": "a", "namespace": "ns-a", "training": {"default_runtime": "jax-distributed"}},
             {"name": "b"}, {"name": "c", "training": {}}]
    assert training.team_defaults(teams) == [{"team": "a", "namespace": "ns-a", "default_runtime": "jax-distributed"}]


def test_every_runtime_has_a_pinned_image():
    from ansible_collections.gpufleet.platform.plugins.module_utils import config_schema
    assert set(config_schema.TRAINING_RUNTIMES) == set(versions.TRAINING_RUNTIME_IMAGES)
    assert set(training.OPERATORS) | set(training.BUILTIN_INTEGRATIONS) == set(config_schema.KUEUE_INTEGRATIONS)


def test_issues_tolerate_what_the_schema_refused():
    assert training.issues({"services": "x", "teams": [None, {"training": "x"}]}) == []
    plan = copy.deepcopy({"runtimes": None})
    assert training.plan_service(plan)["runtimes"] == ["torch-distributed"]
