"""examples/render.py model-weights-pvc: the claim on the platform's StorageClass, or refused naming storage."""
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


def _docs(storage, **kwargs):
    config = copy.deepcopy(LAB)
    if storage is not None:
        config["storage"] = storage
    docs = yaml.safe_load_all(render.render(config, "model-weights-pvc", "inference", **kwargs))
    return [d for d in docs if d]


def test_local_path_claim_and_loader():
    pvc, job = _docs({"backend": "local-path"}, model="Org/Model-7B", size="40Gi")
    assert pvc["metadata"] == {"name": "model-weights", "namespace": "inference"}
    assert pvc["spec"] == {"accessModes": ["ReadWriteOnce"], "storageClassName": "local-path",
                           "resources": {"requests": {"storage": "40Gi"}}}
    container = job["spec"]["template"]["spec"]["containers"][0]
    script = container["command"][2]
    assert 'huggingface-cli download "Org/Model-7B" --local-dir "$dest"' in script
    assert "dest=/mnt/models/model-7b" in script
    assert job["spec"]["template"]["spec"]["volumes"] == [
        {"name": "models", "persistentVolumeClaim": {"claimName": "model-weights"}}]


def test_nfs_is_read_write_many_and_existing_is_used_as_is():
    nfs = {"backend": "nfs", "nfs": {"server": "10.0.0.5", "path": "/exports"}}
    assert _docs(nfs)[0]["spec"]["accessModes"] == ["ReadWriteMany"]
    pvc = _docs({"existing": "site-ssd"}, claim="weights")[0]
    assert pvc["spec"]["storageClassName"] == "site-ssd" and pvc["metadata"]["name"] == "weights"


def test_refused_without_storage():
    with pytest.raises(render.ExampleError, match=r"^storage: config.yml has no storage section"):
        _docs(None)
    with pytest.raises(render.ExampleError, match=r"storage.backend: unknown storage backend"):
        _docs({"backend": "ceph"})
