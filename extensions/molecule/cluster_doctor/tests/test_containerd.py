"""The containerd NVIDIA runtime drop-in on the preinstalled-driver worker: present, valid TOML, and kept when
Kubespray re-renders config.toml (kubespray#12277), with or without the imports line Kubespray gets from the
config inventory (containerd_extra_args)."""
import os

import pytest

from conftest import DROPIN, KUBESPRAY_CONFIG, REPO, ansible_playbook, show, toml

NODES_PLAYBOOK = os.path.join(REPO, "playbooks", "nodes.yml")
IMPORTS = 'imports = ["/etc/containerd/conf.d/*.toml"]'


@pytest.fixture
def gpu1(node):
    return node("doctor-gpu-1")


def kubespray_render(host, extra_args=""):
    """Rewrite config.toml as a Kubespray run does; extra_args lands at the top level, after the version line."""
    with open(KUBESPRAY_CONFIG) as handle:
        text = handle.read()
    if extra_args:
        text = text.replace("version = 3\n", "version = 3\n%s\n" % extra_args, 1)
    host.run("cat > /etc/containerd/config.toml <<'EOF'\n%sEOF" % text)


def test_drop_in_is_present_and_valid_toml(gpu1):
    f = gpu1.file(DROPIN)
    assert f.exists and f.user == "root" and f.mode == 0o644
    nvidia = toml(gpu1, DROPIN)["plugins"]["io.containerd.cri.v1.runtime"]["containerd"]["runtimes"]["nvidia"]
    assert nvidia["runtime_type"] == "io.containerd.runc.v2"
    assert nvidia["options"]["BinaryName"] == "/usr/local/nvidia/toolkit/nvidia-container-runtime"
    assert toml(gpu1, "/etc/containerd/config.toml")["imports"] == ["/etc/containerd/conf.d/*.toml"]


def test_no_drop_in_on_the_other_nodes(node):
    for name in ("doctor-cp-1", "doctor-gpu-2"):
        assert not node(name).file(DROPIN).exists, name


def test_kubespray_extra_args_line_is_the_drop_in_import():
    from ansible_collections.gpufleet.platform.plugins.module_utils import config_plan  # the collection link, see conftest
    assert config_plan.CONTAINERD_IMPORTS_LINE == IMPORTS


def test_drop_in_survives_a_kubespray_render_with_the_imports_line(gpu1):
    before = gpu1.file(DROPIN).md5sum
    kubespray_render(gpu1, IMPORTS)
    assert gpu1.file(DROPIN).md5sum == before
    assert toml(gpu1, "/etc/containerd/config.toml")["imports"] == ["/etc/containerd/conf.d/*.toml"]
    rc, out, recap = ansible_playbook(NODES_PLAYBOOK, "--limit", "localhost,doctor-gpu-1")
    assert rc == 0 and recap["doctor-gpu-1"]["changed"] == 0, show(out)


def test_drop_in_survives_a_bare_kubespray_render_and_the_nodes_layer_restores_the_import(gpu1):
    before = gpu1.file(DROPIN).md5sum
    kubespray_render(gpu1)
    assert "imports" not in toml(gpu1, "/etc/containerd/config.toml")
    assert gpu1.file(DROPIN).md5sum == before
    rc, out, recap = ansible_playbook(NODES_PLAYBOOK, "--limit", "localhost,doctor-gpu-1")
    assert rc == 0 and recap["doctor-gpu-1"]["changed"] == 1, show(out)  # the imports line only
    assert toml(gpu1, "/etc/containerd/config.toml")["imports"] == ["/etc/containerd/conf.d/*.toml"]
    assert toml(gpu1, DROPIN) and gpu1.file(DROPIN).md5sum == before
