"""GPU model facts the lab needs to label simulated nodes like GPU feature discovery would.

The collection's own catalog (plugins/module_utils/gpu_catalog.py) is the source when it can be
imported; this local table is only a fallback (and supplies facts the catalog may not carry, such
as the GFD family label).
"""
import os
import sys

from . import settings

# key -> (gfd product label, memory MiB, family, compute capability, mig capable, PCI device id)
_LOCAL = {
    "a100-sxm4-40gb": ("NVIDIA-A100-SXM4-40GB", 40960, "ampere", "8.0", True, "0x20B010DE"),
    "a100-sxm4-80gb": ("NVIDIA-A100-SXM4-80GB", 81920, "ampere", "8.0", True, "0x20B210DE"),
    "a100-pcie-80gb": ("NVIDIA-A100-PCIE-80GB", 81920, "ampere", "8.0", True, "0x20B510DE"),
    "a30": ("NVIDIA-A30", 24576, "ampere", "8.0", True, "0x20B710DE"),
    "h100-sxm5-80gb": ("NVIDIA-H100-80GB-HBM3", 81559, "hopper", "9.0", True, "0x233010DE"),
    "h100-pcie-80gb": ("NVIDIA-H100-PCIe", 81559, "hopper", "9.0", True, "0x233110DE"),
    "h100-nvl": ("NVIDIA-H100-NVL", 95830, "hopper", "9.0", True, "0x232110DE"),
    "h200-sxm5-141gb": ("NVIDIA-H200", 143771, "hopper", "9.0", True, "0x233510DE"),
    "b200": ("NVIDIA-B200", 183359, "blackwell", "10.0", True, "0x290110DE"),
    "l40s": ("NVIDIA-L40S", 46068, "ada-lovelace", "8.9", False, "0x26B910DE"),
    "l40": ("NVIDIA-L40", 46068, "ada-lovelace", "8.9", False, "0x26B510DE"),
    "l4": ("NVIDIA-L4", 23034, "ada-lovelace", "8.9", False, "0x27B810DE"),
    "t4": ("Tesla-T4", 15360, "turing", "7.5", False, "0x1EB810DE"),
}

_FAMILY_BY_CC = {"7.0": "volta", "7.5": "turing", "8.0": "ampere", "8.6": "ampere", "8.7": "ampere",
                 "8.9": "ada-lovelace", "9.0": "hopper", "10.0": "blackwell", "12.0": "blackwell"}


def _collection_catalog():
    collections = os.path.join(settings.REPO_ROOT, ".build", "collections")
    link = os.path.join(collections, "ansible_collections", "gpufleet", "platform")
    if not os.path.exists(link):
        try:
            os.makedirs(os.path.dirname(link), exist_ok=True)
            os.symlink(os.path.relpath(settings.REPO_ROOT, os.path.dirname(link)), link)
        except OSError:
            pass
    if collections not in sys.path:
        sys.path.insert(0, collections)
    try:
        from ansible_collections.gpufleet.platform.plugins.module_utils import gpu_catalog  # noqa: E402
    except Exception:  # not there yet, or broken: fall back to the local table
        return None
    return gpu_catalog


class Model(object):
    def __init__(self, key, product, memory_mib, family, compute, mig_capable, pci_id, source):
        self.key = key
        self.gfd_product = product
        self.memory_mib = memory_mib
        self.family = family
        self.compute = compute
        self.mig_capable = mig_capable
        self.pci_id = pci_id
        self.source = source


def lookup(key):
    """Facts for a model key (as written in config.yml gpu_pools.*.model)."""
    local = _LOCAL.get(key)
    catalog = _collection_catalog()
    if catalog is not None:
        try:
            m = catalog.lookup(key)
        except Exception:
            m = None
        if m is not None:
            compute = getattr(m, "compute_capability", None) or (local[3] if local else "8.0")
            if isinstance(compute, (tuple, list)):
                compute = "%s.%s" % tuple(compute[:2])
            arch = getattr(m, "architecture", None)
            family = arch.strip().lower().replace(" ", "-") if arch else \
                (local[2] if local else _FAMILY_BY_CC.get(str(compute), "unknown"))
            pcis = getattr(m, "pci_device_ids", None) or ()
            pci = pcis[0] if pcis else (local[5] if local else None)
            return Model(m.key, m.gfd_product, int(m.memory_mib), str(family).lower(), str(compute),
                         bool(m.mig_capable), pci, "gpu_catalog")
    if local is None:
        raise KeyError("unknown GPU model %r (not in gpu_catalog nor the lab's fallback table)" % key)
    return Model(key, *local, source="lab-fallback")
