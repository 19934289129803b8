"""ansible-playbook runs against the converged container (preinstalled driver scenario): check mode
predicts no change, a Kubespray re-run's rewrite of config.toml is repaired by the next nodes run, and
a pool that declares another GPU model stops the run naming both models, and handlers lost to a killed run
(containerd restart, initramfs rebuild) are redone by the next run, which looks at what runs."""
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


# Lost handlers: a run killed after it changed a file and before its handler ran. The next run must look at what
# runs (when containerd started, how old the initramfs is), not only at whether a file changes now.
STAND_IN_UNIT = "/etc/systemd/system/containerd.service"


def _main_pid(host):
    return host.run("systemctl show -p MainPID --value containerd").stdout.strip()


def test_lost_containerd_restart_is_redone(host):
    # The container has no containerd service: the test adds a unit under that name whose process is `sleep` (a
    # stand-in for the daemon; systemd and its restart are real). What is tested is the role's decision: the
    # service started before its config last changed, so it runs an older config and is restarted.
    assert not host.file(STAND_IN_UNIT).exists or "gpufleet test stand-in" in host.file(STAND_IN_UNIT).content_string
    host.run("printf '[Unit]\\nDescription=gpufleet test stand-in named containerd (sleep)\\n[Service]\\n"
             "ExecStart=/bin/sleep infinity\\n' > %s && systemctl daemon-reload && systemctl restart containerd"
             % STAND_IN_UNIT)
    try:
        before = _main_pid(host)
        assert before not in ("", "0"), host.run("systemctl status containerd --no-pager").stdout
        # converged and started after the files: nothing to do
        rc, out, recap = ansible_playbook(NODES, "-e", "gpufleet_config_file=%s" % config_file())
        assert rc == 0 and recap["changed"] == 0, show(out)
        assert _main_pid(host) == before
        # the drop-in written again (same content) after containerd started, and the run killed before its handler
        host.run("sleep 3 && touch %s" % DROPIN)
        rc, out, recap = ansible_playbook(NODES, "-e", "gpufleet_config_file=%s" % config_file())
        assert rc == 0, show(out)
        assert "Restart containerd when it started before its config last changed" in out, show(out)
        assert "RUNNING HANDLER [gpufleet.platform.gpu_node : Restart containerd]" in out, show(out)
        after = _main_pid(host)
        assert after not in ("", "0", before), (before, after)
        rc, out, recap = ansible_playbook(NODES, "-e", "gpufleet_config_file=%s" % config_file())
        assert rc == 0 and recap["changed"] == 0, show(out)
        assert _main_pid(host) == after
    finally:
        host.run("systemctl stop containerd; rm -f %s; systemctl daemon-reload" % STAND_IN_UNIT)


BLACKLIST = "/etc/modprobe.d/gpufleet-blacklist-nouveau.conf"


def _initramfs_files(host, image):
    out = host.run("lsinitramfs %s" % image)
    assert out.rc == 0, out.stderr
    return {line[2:] if line.startswith("./") else line for line in out.stdout.splitlines()}


def test_lost_initramfs_rebuild_is_redone(host):
    # A real initramfs: the image has initramfs-tools (no kernel package). The running kernel gets what its package
    # would install and the container lacks: an empty modules directory and /boot/config-<kernel> (mkinitramfs reads
    # it to check the kernel can unpack its compression), so that mkinitramfs and update-initramfs build its
    # initramfs for real (with no modules in it); lsinitramfs reads it. Two lost handlers: an initramfs built while the blacklist was away and newer than the
    # blacklist (only its content tells), and one older than the blacklist.
    kernel = host.run("uname -r").stdout.strip()
    image = "/boot/initrd.img-%s" % kernel
    modules = "/lib/modules/%s" % kernel
    inside = BLACKLIST.lstrip("/")
    kconfig = "/boot/config-%s" % kernel
    made_modules, made_kconfig = not host.file(modules).exists, not host.file(kconfig).exists
    assert host.file("/usr/sbin/update-initramfs").exists, "the test image lacks initramfs-tools"
    assert host.file(BLACKLIST).exists, "the converge wrote no nouveau blacklist"
    try:
        if made_kconfig:
            host.run("mkdir -p /boot && echo CONFIG_RD_GZIP=y > %s" % kconfig)
        built = host.run("mkdir -p %s && depmod %s && mv %s /tmp/blacklist && mkinitramfs -o %s %s; rc=$?; "
                         "mv /tmp/blacklist %s && touch %s && exit $rc"
                         % (modules, kernel, BLACKLIST, image, kernel, BLACKLIST, image))
        assert built.rc == 0, built.stdout + built.stderr
        assert inside not in _initramfs_files(host, image)
        assert host.file(image).mtime >= host.file(BLACKLIST).mtime  # the age alone would say it is up to date

        rc, out, recap = ansible_playbook(NODES, "-e", "gpufleet_config_file=%s" % config_file())
        assert rc == 0, show(out)
        assert "does not hold %s as it is now" % BLACKLIST in out, show(out)
        assert "RUNNING HANDLER [gpufleet.platform.gpu_node : Rebuild the initramfs (Debian family)]" in out, show(out)
        assert inside in _initramfs_files(host, image), show(out)
        rc, out, recap = ansible_playbook(NODES, "-e", "gpufleet_config_file=%s" % config_file())
        assert rc == 0 and recap["changed"] == 0, show(out)

        # the blacklist is in it, but the initramfs is older than the blacklist (rewritten after the image was built)
        host.run("touch -d '2 days ago' %s" % image)
        rc, out, recap = ansible_playbook(NODES, "-e", "gpufleet_config_file=%s" % config_file())
        assert rc == 0, show(out)
        assert "is older than %s" % BLACKLIST in out, show(out)
        assert host.file(image).mtime > host.file(BLACKLIST).mtime, show(out)
        rc, out, recap = ansible_playbook(NODES, "-e", "gpufleet_config_file=%s" % config_file())
        assert rc == 0 and recap["changed"] == 0, show(out)
    finally:
        host.run("rm -f %s %s.bak /var/lib/initramfs-tools/%s" % (image, image, kernel))
        if made_modules:
            host.run("rm -rf %s" % modules)
        if made_kconfig:
            host.run("rm -f %s" % kconfig)
