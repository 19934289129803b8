"""gpu_facts and mig_layout through real Ansible runs, with ``nvidia-smi`` replaced by a shim.

The shim is a shell script named ``nvidia-smi`` put first on PATH; it prints the collection's own
fixtures (tests/unit/fixtures/nvidia_smi) for ``-q -x``, ``-L`` and ``mig -lgip``.  A second scenario
runs with no nvidia-smi anywhere, a third with an nvidia-smi that reports a driver/library mismatch.
Runs ansible-playbook with the local connection; no GPU needed.
"""
import json
import os
import stat
import subprocess
import sys
import textwrap

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIX = os.path.join(REPO, "tests", "unit", "fixtures", "nvidia_smi")
BIN = os.path.dirname(sys.executable)
PLAYBOOK = os.path.join(BIN, "ansible-playbook")

pytestmark = pytest.mark.skipif(not os.path.exists(PLAYBOOK), reason="ansible-playbook not installed next to this Python")

PLAY = textwrap.dedent("""\
    - name: Discover GPUs and plan MIG
      hosts: localhost
      connection: local
      gather_facts: false
      tasks:
        - name: Discover
          gpufleet.platform.gpu_facts:
        - name: Plan from the discovered facts
          gpufleet.platform.mig_layout:
            gpu_facts: "{{ ansible_facts.gpufleet_gpu_facts }}"
            layout: all-balanced
          register: plan
          when: ansible_facts.gpufleet_gpu_facts.mig_capable_count > 0
        - name: Show
          ansible.builtin.debug:
            msg: "{{ {'facts': ansible_facts.gpufleet_gpu_facts, 'plan': plan | default(None)} }}"
    """)


def write_shim(folder, body):
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "nvidia-smi")
    with open(path, "w") as f:
        f.write("#!/bin/sh\n" + body)
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def run_play(tmp_path, path_dirs, extra_args=()):
    play = tmp_path / "play.yml"
    play.write_text(PLAY)
    env = dict(os.environ)
    env.update({
        "PATH": os.pathsep.join(list(path_dirs) + [BIN, "/usr/bin", "/bin"]),
        "ANSIBLE_CONFIG": os.path.join(REPO, "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": os.path.join(REPO, ".build", "collections"),
        "ANSIBLE_STDOUT_CALLBACK": "json",
        "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
        "ANSIBLE_INVENTORY_ENABLED": "host_list",
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp"),
        "ANSIBLE_REMOTE_TEMP": str(tmp_path / "tmp"),
        "ANSIBLE_HOME": str(tmp_path / "home"),
    })
    cmd = [PLAYBOOK, "-i", "localhost,", "-e", "ansible_python_interpreter=%s" % sys.executable, str(play)] + list(extra_args)
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240, check=False)
    try:
        out = json.loads(proc.stdout)
    except ValueError:
        pytest.fail("ansible-playbook printed no JSON (rc %s):\n%s\n%s" % (proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:]))
    tasks = dict((t["task"]["name"], t["hosts"]["localhost"]) for t in out["plays"][0]["tasks"])
    return proc.returncode, tasks


def fixture(kind, name):
    return os.path.join(FIX, kind, name)


def test_shim_with_eight_gpu_mig_node(tmp_path):
    shim_dir = str(tmp_path / "shim")
    write_shim(shim_dir, textwrap.dedent("""\
        case "$*" in
          "-q -x") cat '%s' ;;
          "-L") grep -v '^#' '%s' ;;
          "mig -lgip") echo 'No MIG-enabled devices found.' ; exit 6 ;;
          --query-gpu=*) echo "9.0" | awk '{for (i = 0; i < 8; i++) printf "%%d, GPU-a%%07x-1111-2222-3333-%%012x, 9.0\\n", i, 256 + i, 256 + i}' ;;
          *) echo "shim: unexpected arguments: $*" >&2 ; exit 2 ;;
        esac
        """) % (fixture("qx", "h100-sxm5-80gb_8gpu_mig-all-balanced_550.54.15_v13.xml"),
                fixture("list", "h100-sxm5-80gb_8gpu_mig-all-balanced.txt")))
    for check in ([], ["--check"]):
        rc, tasks = run_play(tmp_path, [shim_dir], check)
        assert rc == 0, tasks
        disc = tasks["Discover"]
        assert disc["changed"] is False
        facts = disc["ansible_facts"]["gpufleet_gpu_facts"]
        assert facts["count"] == 8 and facts["models"] == {"h100-sxm5-80gb": 8}
        assert facts["driver_version"] == "550.54.15" and facts["healthy"] is True
        assert [d["profile"] for d in facts["gpus"][3]["mig_devices"]] == ["3g.40gb", "2g.20gb", "1g.10gb", "1g.10gb"]
        assert facts["gpus"][3]["mig_devices"][0]["profile_source"] == "nvidia-smi -L"
        plan = tasks["Plan from the discovered facts"]
        assert plan["changed"] is False and plan["gpu_count"] == 8
        assert plan["resources"]["mixed"] == {
            "nvidia.com/mig-1g.10gb": 16, "nvidia.com/mig-2g.20gb": 8, "nvidia.com/mig-3g.40gb": 8}
        assert plan["mig_parted"]["mig-configs"]["all-balanced"][0]["mig-devices"] == {"3g.40gb": 1, "2g.20gb": 1, "1g.10gb": 2}


def test_no_nvidia_smi(tmp_path):
    if any(os.path.exists(os.path.join(d, "nvidia-smi")) for d in ["/usr/bin", "/bin", "/usr/local/nvidia/bin", "/run/nvidia/driver/usr/bin"]):
        pytest.skip("this machine has a real nvidia-smi in a system directory")
    empty = tmp_path / "empty"
    empty.mkdir()
    rc, tasks = run_play(tmp_path, [str(empty)])
    assert rc == 0, tasks
    facts = tasks["Discover"]["ansible_facts"]["gpufleet_gpu_facts"]
    assert facts["gpus"] == [] and facts["count"] == 0
    assert facts["reason"].startswith("nvidia-smi not found (PATH or /usr/local/nvidia/bin")
    assert tasks["Plan from the discovered facts"].get("skipped") is True


def test_driver_mismatch_fails_with_fix(tmp_path):
    shim_dir = str(tmp_path / "shim")
    write_shim(shim_dir, "echo 'Failed to initialize NVML: Driver/library version mismatch' >&2\nexit 18\n")
    rc, tasks = run_play(tmp_path, [shim_dir])
    assert rc != 0
    disc = tasks["Discover"]
    assert disc["failed"] is True
    assert disc["msg"].startswith("nvidia-smi: NVML driver/library version mismatch")
    assert "Reboot the host" in disc["msg"]


def test_shim_with_real_capture_if_present(tmp_path):
    shared = os.environ.get("GPUFLEET_SHARED", os.path.join(os.path.dirname(REPO), "shared"))
    capture = os.path.join(shared, "fixtures", "nvidia-smi", "qx", "a100-sxm4-80gb_mig-on-4dev_535.54.03_v12_TRIMMED-1of4gpus_telegraf.xml")
    if not os.path.exists(capture):
        pytest.skip("real capture not found in %s (../shared or $GPUFLEET_SHARED); never copied into the repo" % capture)
    shim_dir = str(tmp_path / "shim")
    write_shim(shim_dir, "case \"$*\" in\n  \"-q -x\") cat '%s' ;;\n  *) exit 2 ;;\nesac\n" % capture)
    rc, tasks = run_play(tmp_path, [shim_dir])
    assert rc == 0, tasks
    facts = tasks["Discover"]["ansible_facts"]["gpufleet_gpu_facts"]
    assert facts["models"] == {"a100-sxm4-80gb": 1}
    assert [d["profile"] for d in facts["gpus"][0]["mig_devices"]] == ["1g.20gb"] * 4
    assert [h["check"] for h in facts["health"]] == ["gpu_count_mismatch"]


@pytest.mark.parametrize("args", [["gpufleet.platform.gpu_facts"], ["gpufleet.platform.mig_layout"],
                                  ["-t", "filter", "gpufleet.platform.mig_parted_config"],
                                  ["-t", "filter", "gpufleet.platform.mig_resources"]])
def test_ansible_doc_renders(args, tmp_path):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_HOME=str(tmp_path),
               ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, ".build", "collections"))
    proc = subprocess.run([os.path.join(BIN, "ansible-doc")] + args, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert args[-1] in proc.stdout and "ERROR" not in proc.stderr
