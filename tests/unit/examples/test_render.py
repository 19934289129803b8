"""examples/render.py: a team's example filled from config.yml, or refused naming the key to add."""
import copy
import importlib.util
import os

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
spec = importlib.util.spec_from_file_location("render", os.path.join(ROOT, "examples", "render.py"))
render = importlib.util.module_from_spec(spec)
spec.loader.exec_module(render)

with open(os.path.join(ROOT, "inventories", "lab", "config.yml")) as handle:
    LAB = yaml.safe_load(handle)


def _doc(*args, **kwargs):
    return yaml.safe_load(render.render(copy.deepcopy(LAB), *args, **kwargs))


def test_every_example_renders_for_a_team_that_can_run_it():
    job = _doc("gpu-job", "research", gpus=2)
    assert job["metadata"] == {"generateName": "gpu-job-", "namespace": "research",
                               "labels": {"kueue.x-k8s.io/queue-name": "default"}}
    assert job["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": "2"}
    mig = _doc("mig-job", "research", profile="1g.10gb")
    assert mig["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"] == {"nvidia.com/mig-1g.10gb": "1"}
    shared = _doc("shared-gpu-job", "inference")
    assert shared["metadata"]["namespace"] == "inference"
    gang = _doc("kueue-gang", "research", replicas=4, gpus=2)
    assert (gang["spec"]["parallelism"], gang["spec"]["completions"]) == (4, 4)
    vc = _doc("volcano-gang", "inference", pool="l40s", replicas=3)
    assert vc["spec"]["queue"] == "inference" and vc["spec"]["minAvailable"] == 3
    pod = vc["spec"]["tasks"][0]["template"]["spec"]
    assert pod["nodeSelector"] == {"gpufleet.io/pool": "l40s"} and pod["tolerations"] == []


def test_a_pools_taints_become_the_volcano_jobs_tolerations():
    config = copy.deepcopy(LAB)
    config["gpu_pools"]["a100"]["taints"] = [{"key": "gpufleet.io/a100", "effect": "NoSchedule"}]
    config["teams"][0]["volcano"] = {"weight": 2}
    doc = yaml.safe_load(render.render(config, "volcano-gang", "research", pool="a100"))
    assert doc["spec"]["tasks"][0]["template"]["spec"]["tolerations"] == [
        {"key": "gpufleet.io/a100", "effect": "NoSchedule", "operator": "Exists"}]


@pytest.mark.parametrize("args,kwargs,expected", [
    (("gpu-job", "nobody"), {}, "teams: no team 'nobody' in config.yml (teams: research, inference)"),
    (("gpu-job", "inference"), {"pool": "a100"},
     'teams[1].quotas.a100["nvidia.com/gpu"]: team inference has no quota for it in pool a100; add it'),
    (("gpu-job", "research"), {"pool": "v100"}, "gpu_pools.v100: no such pool in config.yml (pools: a100, h100, l40s)"),
    (("gpu-job", "research"), {"gpus": 9}, "--gpus 9: a node of pool a100 has 8 nvidia.com/gpu"),
    (("kueue-gang", "research"), {"replicas": 3, "gpus": 4},
     'teams[0].quotas.a100["nvidia.com/gpu"]: the job asks 12 but the team may use at most 8'),
    (("mig-job", "research"), {"profile": "7g.80gb"},
     'add teams[0].quotas.<pool>["nvidia.com/mig-7g.80gb"] to config.yml'),
    (("mig-job", "research"), {"profile": "1g.10gb", "pool": "a100"},
     "gpu_pools.a100: the pool offers no nvidia.com/mig-1g.10gb (per node: nvidia.com/gpu=8)"),
    (("mig-job", "research"), {}, "mig-job needs --profile"),
    (("shared-gpu-job", "research"), {"pool": "a100"}, "gpu_pools.a100.sharing.mode: the pool is not shared"),
    (("shared-gpu-job", "research"), {}, "team research has no nvidia.com/gpu quota in any shared pool"),
    (("no-such-example", "research"), {}, "no example 'no-such-example'"),
])
def test_what_a_team_cannot_run_is_refused_naming_the_key(args, kwargs, expected):
    with pytest.raises(render.ExampleError) as info:
        render.render(copy.deepcopy(LAB), *args, **kwargs)
    assert expected in str(info.value)


def test_services_off_and_invalid_config_are_refused():
    config = copy.deepcopy(LAB)
    config["services"]["kueue"]["enabled"] = False
    with pytest.raises(render.ExampleError, match="services.kueue.enabled: Kueue is off"):
        render.render(config, "gpu-job", "research")
    config["services"]["volcano"]["enabled"] = False
    with pytest.raises(render.ExampleError, match="services.volcano.enabled: Volcano is off"):
        render.render(config, "volcano-gang", "research")
    config = copy.deepcopy(LAB)
    config["teams"][0]["quotas"]["a100"]["nvidia.com/gpu"] = 400
    with pytest.raises(render.ExampleError, match="config.yml is not valid"):
        render.render(config, "gpu-job", "research")


def test_main_prints_nothing_and_exits_2_when_refused(tmp_path, capsys):
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(LAB))
    assert render.main(["gpu-job", "--config", str(path), "--team", "nobody"]) == 2
    out = capsys.readouterr()
    assert out.out == "" and "no team 'nobody'" in out.err
    assert render.main(["gpu-job", "--config", str(tmp_path / "missing.yml"), "--team", "research"]) == 2
    assert render.main(["gpu-job", "--config", str(path), "--team", "research", "--gpus", "0"]) == 2
    assert render.main(["gpu-job", "--config", str(path), "--team", "research"]) == 0
    assert "kind: Job" in capsys.readouterr().out
