"""The GPU simulator's DCGM-exporter-style metrics (pure parts) and the NFD labels it keeps on GPU nodes."""
import os
import re
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "lab"))

from gpufleet_lab import controllers, gpu_models, gpu_simulator, nodes, procs  # noqa: E402

METRICS = ("DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_GPU_TEMP",
           "DCGM_FI_DEV_POWER_USAGE")
SAMPLE = re.compile(r'^(DCGM_FI_DEV_[A-Z_]+)\{gpu="(\d+)",UUID="(GPU-[0-9a-f-]{36})",device="nvidia\d+",'
                    r'modelName="([^"]+)",Hostname="([^"]+)"\} (-?[0-9.]+)$')


def _parse(text):
    out, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            types[name] = kind
            continue
        if line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, "not a DCGM exporter sample line: %r" % line
        name, gpu, uid, model, host, value = m.groups()
        out[(name, host, int(gpu))] = (uid, model, float(value))
    return out, types


def test_text_has_every_metric_per_gpu_with_dcgm_labels():
    h100 = gpu_models.lookup("h100-sxm5-80gb")
    samples = gpu_simulator.gpu_samples("lab-h100-1", h100, 8, busy=3)
    samples += gpu_simulator.gpu_samples("lab-l40s-1", gpu_models.lookup("l40s"), 4, busy=0)
    text = gpu_simulator.dcgm_metrics_text(samples)
    assert text.endswith("\n")
    values, types = _parse(text)
    assert types == {name: "gauge" for name in METRICS}
    assert len(values) == len(METRICS) * 12
    uid, model, _ = values[("DCGM_FI_DEV_GPU_UTIL", "lab-h100-1", 0)]
    assert model == h100.gfd_product.replace("-", " ") and uid == gpu_simulator.gpu_uuid("lab-h100-1", 0)
    for gpu in range(8):
        busy = gpu < 3
        util = values[("DCGM_FI_DEV_GPU_UTIL", "lab-h100-1", gpu)][2]
        used = values[("DCGM_FI_DEV_FB_USED", "lab-h100-1", gpu)][2]
        free = values[("DCGM_FI_DEV_FB_FREE", "lab-h100-1", gpu)][2]
        assert (util >= 90) if busy else (util == 0)
        assert used + free == h100.memory_mib and (used > 0) == busy
        assert 20 <= values[("DCGM_FI_DEV_GPU_TEMP", "lab-h100-1", gpu)][2] <= 90
        assert values[("DCGM_FI_DEV_POWER_USAGE", "lab-h100-1", gpu)][2] > (500 if busy else 0)
    # UUIDs are stable and distinct per node and index
    uids = {v[0] for k, v in values.items() if k[0] == "DCGM_FI_DEV_GPU_UTIL"}
    assert len(uids) == 12
    assert gpu_simulator.dcgm_metrics_text(samples) == text


def test_label_values_are_escaped():
    smp = dict(gpu_simulator.gpu_samples("n", gpu_models.lookup("l4"), 1, busy=0)[0], modelName='a"b\\c')
    assert 'modelName="a\\"b\\\\c"' in gpu_simulator.dcgm_metrics_text([smp])


def test_busy_gpus_follows_requested_share_of_capacity():
    assert gpu_simulator.busy_gpus(8, {"nvidia.com/gpu": "8"}, {}) == 0
    assert gpu_simulator.busy_gpus(8, {"nvidia.com/gpu": "8"}, {"nvidia.com/gpu": 3}) == 3
    # time-slicing: 4 GPUs x 4 replicas; 5 replicas in use -> 2 GPUs busy
    assert gpu_simulator.busy_gpus(4, {"nvidia.com/gpu": "16"}, {"nvidia.com/gpu": 5}) == 2
    # MIG: 56 slices on 8 GPUs, one slice in use -> 1 GPU busy; a resource the node lacks is ignored
    cap = {"nvidia.com/mig-1g.10gb": "56", "nvidia.com/gpu": "0"}
    assert gpu_simulator.busy_gpus(8, cap, {"nvidia.com/mig-1g.10gb": 1, "nvidia.com/mig-2g.20gb": 9}) == 1
    assert gpu_simulator.busy_gpus(8, {"nvidia.com/gpu": "8"}, {"nvidia.com/gpu": 99}) == 8


def test_nfd_labels_the_operator_reads():
    labels = nodes.nfd_labels(gpu=True)
    nfd = "feature.node.kubernetes.io/"
    assert labels[nfd + "pci-10de.present"] == "true"  # gpuNodeLabels in the operator's state_manager.go
    assert labels[nfd + "system-os_release.ID"] == "debian" and labels[nfd + "system-os_release.VERSION_ID"] == "12"
    assert labels[nfd + "kernel-version.full"] == nodes.KERNEL_VERSION
    assert not any("pci-" in k for k in nodes.nfd_labels(gpu=False))
    ubuntu = nodes.nfd_labels(kernel="6.8.0-60-generic+x", os_image="Ubuntu 24.04.2 LTS")
    assert ubuntu[nfd + "system-os_release.VERSION_ID"] == "24.04"
    assert ubuntu[nfd + "system-os_release.VERSION_ID.minor"] == "04"
    assert ubuntu[nfd + "kernel-version.full"] == "6.8.0-60-generic_x"  # a valid label value
    assert ubuntu[nfd + "kernel-version.revision"] == "0"


def test_gpu_operator_runs_as_rendered_with_the_image_state_manifests(tmp_path, monkeypatch):
    spec = next(s for s in controllers.REGISTRY if s.name == "gpu-operator")
    assert spec.binary == "gpu-operator" and spec.containers == ["gpu-operator"]
    chart_args = ["--leader-elect", "--zap-time-encoding=epoch", "--zap-log-level=info"]
    assert spec.argv(None, chart_args) == chart_args  # leader election and addresses as the chart renders them
    home = tmp_path / "gpu-operator-v26.7.0"
    monkeypatch.setattr(controllers, "gpu_operator_home", lambda: str(home))
    with pytest.raises(procs.LabError, match="state manifests missing"):
        spec.mounts(None)
    (home / "state-driver").mkdir(parents=True)
    (home / "manifests" / "state-driver").mkdir(parents=True)
    assert spec.mounts(None) == [(str(home), "/opt/gpu-operator")]  # read-only bind mount in the pod root
    # the image name the chart renders, behind an air-gap registry prefix, selects it (when the binary is built)
    monkeypatch.setattr(controllers, "controller_bin", lambda: str(tmp_path))
    (tmp_path / "gpu-operator").write_text("#!/bin/sh\n")
    (tmp_path / "gpu-operator").chmod(0o755)
    assert controllers.match("registry.invalid/gpufleet-lab/nvidia/gpu-operator:v26.7.0", "gpu-operator", None) is spec
    assert controllers.match("registry.invalid/gpufleet-lab/nvidia/gpu-operator-validator:v26.7.0", "x", None) is None
