"""GPU model facts the lab needs to label simulated nodes like GPU feature discovery would.

The one source is the collection's catalog (plugins/module_utils/gpu_catalog.py), so the lab simulates only GPUs
the product knows. It is imported as ``ansible_collections.gpufleet.platform`` through the link
``.build/collections/ansible_collections/gpufleet/platform`` -> the repository (the link `make venv` makes; made
here when absent). When the catalog cannot be imported, CatalogMissing says what is missing; there is no fallback.
"""
import os
import sys
from collections import namedtuple

from . import settings

COLLECTIONS = os.path.join(settings.REPO_ROOT, ".build", "collections")
LINK = os.path.join(COLLECTIONS, "ansible_collections", "gpufleet", "platform")
CATALOG_MODULE = "ansible_collections.gpufleet.platform.plugins.module_utils.gpu_catalog"

# gfd_product: the nvidia.com/gpu.product label; family: nvidia.com/gpu.family (the architecture, lower case);
# compute: "major.minor"; pci_id: the first PCI device ID; source: where the facts come from (always gpu_catalog)
Model = namedtuple("Model", "key gfd_product memory_mib family compute mig_capable pci_id source")


class CatalogMissing(RuntimeError):
    """The collection's GPU catalog cannot be imported."""


def collection_importable():
    """Make ``ansible_collections.gpufleet.platform`` importable (link and sys.path); returns the link path."""
    if not os.path.lexists(LINK):
        try:
            os.makedirs(os.path.dirname(LINK), exist_ok=True)
            os.symlink(os.path.relpath(settings.REPO_ROOT, os.path.dirname(LINK)), LINK)
        except OSError:
            pass  # the import below fails and says so
    if COLLECTIONS not in sys.path:
        sys.path.insert(0, COLLECTIONS)
    return LINK


def catalog():
    """The collection's gpu_catalog module, or CatalogMissing naming what is missing."""
    link = collection_importable()
    try:
        from ansible_collections.gpufleet.platform.plugins.module_utils import gpu_catalog
    except Exception as exc:
        target = os.path.join(settings.REPO_ROOT, "plugins", "module_utils", "gpu_catalog.py")
        raise CatalogMissing(
            "the lab's GPU models come only from the collection's catalog %s (module %s, through the link %s -> %s), "
            "and it cannot be imported: %s: %s. Run `make venv` in %s (it makes the link), or restore the file."
            % (target, CATALOG_MODULE, link, settings.REPO_ROOT, type(exc).__name__, exc, settings.REPO_ROOT)) from exc
    return gpu_catalog


def lookup(key):
    """Facts for a model key (as written in config.yml gpu_pools.*.model); the catalog's error for an unknown one."""
    m = catalog().lookup(key)
    return Model(m.key, m.gfd_product, int(m.memory_mib), m.architecture.strip().lower().replace(" ", "-"),
                 str(m.compute_capability), bool(m.mig_capable), m.pci_device_ids[0] if m.pci_device_ids else None,
                 "gpu_catalog")
