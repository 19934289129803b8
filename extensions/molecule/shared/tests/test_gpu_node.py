"""What gpu_node left on the host, per scenario (testinfra, through molecule's docker connection)."""
import pytest

from conftest import DROPIN, REAL_CAPTURES, SCENARIO, fact, toml

pytestmark = pytest.mark.usefixtures("diagnostics")

# What the shim prints, per scenario: (count, models) with the real captures and with the synthetic ones
EXPECTED = {
    "gpu_node_operator": ((8, {"h100-sxm5-80gb": 8}), (8, {"h100-sxm5-80gb": 8})),
    "gpu_node_preinstalled": ((1, {"l40s": 1}), (1, {"a100-pcie-40gb": 1})),
    "gpu_node_no_gpu": ((0, {}), (0, {})),
}


def test_local_facts_hold_the_discovered_gpus(host):
    f = host.file("/etc/ansible/facts.d/gpufleet_gpus.fact")
    assert f.exists and f.user == "root" and f.mode == 0o644
    data = fact(host)
    count, models = EXPECTED[SCENARIO][0 if REAL_CAPTURES else 1]
    assert (data["count"], data["models"]) == (count, models), data
    assert data["pool"] == "gpu"
    assert len(data["gpus"]) == count
    assert data["driver_mode"] == ("preinstalled" if SCENARIO == "gpu_node_preinstalled" else "operator")
    volatile = {"temperature_c", "power_draw_w", "ecc_errors_uncorrected_volatile"}
    assert all(not volatile & set(g) for g in data["gpus"]), "volatile readings would break idempotence"
    if count:
        assert data["declared_model"] == next(iter(models)) and data["reason"] is None
        assert all(g["uuid"].startswith("GPU-") and g["pci_bus_id"] for g in data["gpus"])
    else:
        assert data["declared_model"] == "h100-sxm5-80gb"
        assert data["reason"].startswith("nvidia-smi not found"), data["reason"]


def test_nouveau_is_blacklisted(host):
    conf = host.file("/etc/modprobe.d/gpufleet-blacklist-nouveau.conf")
    assert conf.exists and conf.mode == 0o644
    assert "blacklist nouveau" in conf.content_string.splitlines()
    assert "options nouveau modeset=0" in conf.content_string.splitlines()


@pytest.mark.skipif(SCENARIO != "gpu_node_preinstalled", reason="the drop-in is written only with a preinstalled driver")
def test_nvidia_runtime_drop_in(host):
    dropin = toml(host, DROPIN)
    assert dropin["version"] == 3
    nvidia = dropin["plugins"]["io.containerd.cri.v1.runtime"]["containerd"]["runtimes"]["nvidia"]
    assert nvidia["runtime_type"] == "io.containerd.runc.v2"
    # gpu_node_container_toolkit defaults to the GPU Operator's toolkit
    assert nvidia["options"] == {"BinaryName": "/usr/local/nvidia/toolkit/nvidia-container-runtime", "SystemdCgroup": True}


@pytest.mark.skipif(SCENARIO != "gpu_node_preinstalled", reason="config.toml is edited only with a preinstalled driver")
def test_config_toml_imports_the_drop_ins_and_keeps_kubespray_settings(host):
    config = toml(host, "/etc/containerd/config.toml")
    assert config["imports"] == ["/etc/containerd/conf.d/*.toml"]
    runc = config["plugins"]["io.containerd.cri.v1.runtime"]["containerd"]["runtimes"]["runc"]
    assert runc["options"]["SystemdCgroup"] is True  # Kubespray's runtime is untouched
    lines = host.file("/etc/containerd/config.toml").content_string.splitlines()
    assert lines.index("version = 3") + 1 == lines.index('imports = ["/etc/containerd/conf.d/*.toml"]')
    assert sum(line.startswith("imports") for line in lines) == 1


@pytest.mark.skipif(SCENARIO != "gpu_node_preinstalled", reason="containerd is installed only in the preinstalled scenario")
def test_containerd_merges_the_drop_in(host):
    binary = host.file("/usr/local/bin/containerd")
    if not binary.exists:
        pytest.skip("no containerd binary in the container (make test-containerd builds one from the Go module proxy)")
    dump = host.run("/usr/local/bin/containerd --config /etc/containerd/config.toml config dump")
    assert dump.rc == 0, dump.stderr
    assert "nvidia-container-runtime" in dump.stdout, dump.stdout
    assert "runtimes.nvidia" in dump.stdout and "runtimes.runc" in dump.stdout, dump.stdout


@pytest.mark.skipif(SCENARIO == "gpu_node_preinstalled", reason="operator driver mode only")
def test_operator_mode_leaves_containerd_alone(host):
    assert not host.file(DROPIN).exists
    assert not host.file("/etc/containerd/config.toml").exists
