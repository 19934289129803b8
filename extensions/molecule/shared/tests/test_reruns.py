"""ansible-playbook runs against the converged container (preinstalled driver scenario): check mode
predicts no change, a Kubespray re-run's rewrite of config.toml is repaired by the next nodes run, and
a pool that declares another GPU model stops the run naming both models."""
import os

import pytest

from conftest import DROPIN, REAL_CAPTURES, REPO, SCENARIO, ansible_playbook, show, toml

pytestmark = [
    pytest.mark.skipif(SCENARIO != "gpu_node_preinstalled", reason="runs against the preinstalled driver scenario"),
    pytest.mark.usefixtures("diagnostics"),
]
NODES = os.path.join(REPO, "playbooks", "nodes.yml")
SCENARIO_DIR = os.environ.get("MOLECULE_SCENARIO_DIRECTORY", "")
KUBESPRAY_CONFIG = os.path.join(REPO, "extensions", "molecule", "shared", "files", "kubespray-config.toml")


def config_file():
    return os.path.join(SCENARIO_DIR, "inventory", "config.yml" if REAL_CAPTURES else "config-synthetic.yml")


def test_check_mode_on_the_converged_host_predicts_no_change():
    rc, out, recap = ansible_playbook(NODES, "-e", "gpufleet_config_file=%s" % config_file(), "--check", "--diff")
    assert rc == 0, show(out)
    assert recap["changed"] == 0, show(out)


def test_kubespray_rewrite_of_config_toml_is_repaired(host):
    # What a Kubespray re-run does (kubespray#12277): config.toml rewritten, no imports line.
    with open(KUBESPRAY_CONFIG) as f:
        host.run("cat > /etc/containerd/config.toml <<'EOF'\n%sEOF" % f.read())
    assert "imports" not in toml(host, "/etc/containerd/config.toml")
    before = host.file(DROPIN).md5sum
    rc, out, recap = ansible_playbook(NODES, "-e", "gpufleet_config_file=%s" % config_file(), "--diff")
    assert rc == 0, show(out)
    assert recap["changed"] == 1, show(out)  # the imports line only
    assert "Make config.toml import the drop-in directory" in out
    assert toml(host, "/etc/containerd/config.toml")["imports"] == ["/etc/containerd/conf.d/*.toml"]
    assert host.file(DROPIN).md5sum == before


def test_existing_imports_are_kept(host):
    # a site's own import; ours goes first: containerd 2.2 silently stops reading imports after a missing file
    host.run("echo 'version = 3' > /etc/containerd/site.toml")
    host.run("sed -i 's|^imports = .*|imports = [\"/etc/containerd/site.toml\"]|' /etc/containerd/config.toml")
    try:
        rc, out, recap = ansible_playbook(NODES, "-e", "gpufleet_config_file=%s" % config_file())
        assert rc == 0, show(out)
        assert recap["changed"] == 1, show(out)
        imports = toml(host, "/etc/containerd/config.toml")["imports"]
        assert imports == ["/etc/containerd/conf.d/*.toml", "/etc/containerd/site.toml"]
    finally:
        host.run("sed -i 's|^imports = .*|imports = [\"/etc/containerd/conf.d/*.toml\"]|' /etc/containerd/config.toml")
        host.run("rm -f /etc/containerd/site.toml")


def test_pool_declaring_another_model_stops_the_run(tmp_path):
    discovered = "l40s" if REAL_CAPTURES else "a100-pcie-40gb"
    with open(config_file()) as f:
        text = f.read()
    bad = tmp_path / "config.yml"
    bad.write_text(text.replace("model: %s" % discovered, "model: h100-sxm5-80gb"))
    rc, out, recap = ansible_playbook(NODES, "-e", "gpufleet_config_file=%s" % bad)
    assert rc != 0, show(out)
    assert "Check the discovered GPU model is the pool's model" in out, show(out)
    assert "declares GPU model 'h100-sxm5-80gb'" in out and "nvidia-smi found %s x1" % discovered in out, show(out)
    assert recap["failed"] == 1 and recap["changed"] == 0, show(out)
