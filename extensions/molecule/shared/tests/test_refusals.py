"""The role's refusals, proven against the clean no-GPU container: each run applies gpu_node with one
bad input and must stop in preflight with a message naming the variable, the value and the fix."""
import pytest

from conftest import HOST, SCENARIO, ansible_playbook, show

pytestmark = pytest.mark.skipif(SCENARIO != "gpu_node_no_gpu", reason="runs against the clean no-GPU container")

PLAY = """\
- name: Apply gpu_node
  hosts: %s
  gather_facts: false
  roles:
    - role: gpufleet.platform.gpu_node
""" % HOST


@pytest.fixture
def play(tmp_path):
    path = tmp_path / "play.yml"
    path.write_text(PLAY)
    return path


def refused(play, *extra):
    args = []
    for item in extra:
        args += ["-e", item]
    rc, out, recap = ansible_playbook(play, *args)
    assert rc != 0, show(out)
    assert recap.get("changed") == 0, "a refusal must come before any change:\n" + show(out)
    return out


def test_preinstalled_mode_without_a_driver(play):
    out = refused(play, "gpu_node_driver_mode=preinstalled")
    assert "gpu_node_driver_mode is 'preinstalled' but no GPU was discovered: nvidia-smi not found" in out, show(out)


def test_operator_mode_on_a_host_that_has_a_driver(play, host):
    host.run("printf '#!/bin/sh\\nexit 9\\n' > /usr/bin/nvidia-smi && chmod 755 /usr/bin/nvidia-smi")
    try:
        out = refused(play)
    finally:
        host.run("rm -f /usr/bin/nvidia-smi")
    assert "gpu_node_driver_mode is 'operator' but the host already has an NVIDIA driver (/usr/bin/nvidia-smi)" in out, show(out)


def test_operator_mode_without_kernel_headers(play, host):
    kernel = host.run("uname -r").stdout.strip()
    out = refused(play, "gpu_node_require_kernel_headers=true")
    assert "the headers of the running kernel %s are missing" % kernel in out, show(out)
    assert "linux-headers-%s" % kernel in out, show(out)


def test_operator_mode_on_a_distribution_without_driver_containers(play):
    out = refused(play, '{"gpu_node_operator_distributions": ["Ubuntu", "RedHat"]}')
    assert "publishes driver containers only for Ubuntu, RedHat (gpu_node_operator_distributions), not Debian" in out, show(out)


def test_operator_mode_with_secure_boot(play, host):
    # the UEFI variable's bytes: 4 attribute bytes, then 1 = Secure Boot enabled
    host.run("printf '\\006\\000\\000\\000\\001' > /tmp/SecureBoot-test")
    try:
        out = refused(play, "_gpu_node_secure_boot_var=/tmp/SecureBoot-test")
    finally:
        host.run("rm -f /tmp/SecureBoot-test")
    assert "Secure Boot is enabled" in out, show(out)


def test_secure_boot_disabled_passes(play, host):
    host.run("printf '\\006\\000\\000\\000\\000' > /tmp/SecureBoot-test")
    try:
        # the pool values nodes.yml gave the converge, so that the local facts stay as they are
        rc, out, recap = ansible_playbook(play, "-e", "_gpu_node_secure_boot_var=/tmp/SecureBoot-test", "-e",
                                          '{"gpu_node_pool": "gpu", "gpu_node_model": "h100-sxm5-80gb", "gpu_node_gpus_per_node": 8}')
    finally:
        host.run("rm -f /tmp/SecureBoot-test")
    assert rc == 0 and recap["changed"] == 0, show(out)


def test_bad_driver_mode_names_the_choices(play):
    out = refused(play, "gpu_node_driver_mode=host")
    assert "gpu_node_driver_mode" in out and "operator, preinstalled" in out, show(out)
