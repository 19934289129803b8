"""The lab's GPU models come only from the collection's catalog (lab/gpufleet_lab/gpu_models.py), and it fails loudly."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "lab"))

from gpufleet_lab import gpu_models  # noqa: E402

from ansible_collections.gpufleet.platform.plugins.module_utils import gpu_catalog  # noqa: E402


@pytest.mark.parametrize("key", gpu_catalog.keys())
def test_every_catalog_model_and_only_its_facts(key):
    model = gpu_models.lookup(key)
    entry = gpu_catalog.lookup(key)
    assert model == (entry.key, entry.gfd_product, entry.memory_mib, entry.architecture.lower().replace(" ", "-"),
                     entry.compute_capability, entry.mig_capable, entry.pci_device_ids[0], "gpu_catalog")


def test_gfd_family_labels():
    assert [gpu_models.lookup(k).family for k in ("a100-sxm4-80gb", "h100-sxm5-80gb", "l40s", "b200", "t4")] == \
        ["ampere", "hopper", "ada-lovelace", "blackwell", "turing"]


def test_a_model_the_catalog_lacks_is_the_catalogs_error():
    with pytest.raises(gpu_catalog.UnknownGpuModelError):
        gpu_models.lookup("a100-sxm4-1tb")


def test_no_catalog_fails_naming_what_is_missing(monkeypatch):
    from ansible_collections.gpufleet.platform.plugins import module_utils
    monkeypatch.delattr(module_utils, "gpu_catalog")
    monkeypatch.setitem(sys.modules, gpu_models.CATALOG_MODULE, None)  # what a missing or broken file gives
    with pytest.raises(gpu_models.CatalogMissing) as err:
        gpu_models.lookup("a100-sxm4-80gb")
    message = str(err.value)
    for part in (os.path.join("plugins", "module_utils", "gpu_catalog.py"), gpu_models.CATALOG_MODULE, gpu_models.LINK,
                 "make venv"):
        assert part in message
    assert isinstance(err.value.__cause__, ImportError)
