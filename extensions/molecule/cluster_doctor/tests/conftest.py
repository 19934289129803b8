"""Helpers of the cluster_doctor verifier: the doctor's JSON report, ansible-playbook runs against molecule's
inventory (docker exec connection), and the containers as testinfra hosts."""
import json
import os
import subprocess
import sys

import pytest
import testinfra

REPO = os.environ.get("MOLECULE_PROJECT_DIRECTORY") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
SHARED = os.environ.get("GPUFLEET_SHARED") or os.path.join(os.path.dirname(REPO), "shared")
REAL_CAPTURES = os.path.isdir(os.path.join(SHARED, "fixtures", "nvidia-smi", "qx"))
EPHEMERAL = os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "")
SCENARIO_DIR = os.environ.get("MOLECULE_SCENARIO_DIRECTORY", os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REPORT = os.path.join(EPHEMERAL, "preflight-report.json")
PREFLIGHT = os.path.join(REPO, "playbooks", "preflight.yml")
NODES = ("doctor-cp-1", "doctor-gpu-1", "doctor-gpu-2")
DROPIN = "/etc/containerd/conf.d/99-gpufleet-nvidia.toml"
KUBESPRAY_CONFIG = os.path.join(REPO, "extensions", "molecule", "shared", "files", "kubespray-config.toml")
# the collection, importable as ansible_collections.gpufleet.platform (linked by `make venv`)
if os.path.join(REPO, ".build", "collections") not in sys.path:
    sys.path.insert(0, os.path.join(REPO, ".build", "collections"))


def inventory():
    return os.path.join(EPHEMERAL, "inventory")


def config_file():
    return os.path.join(SCENARIO_DIR, "inventory", "config.yml" if REAL_CAPTURES else "config-synthetic.yml")


def ansible_playbook(playbook, *args, inventories=(), timeout=300):
    """Run ansible-playbook like molecule does; returns (rc, output, recap per host)."""
    binary = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    env = dict(os.environ)
    env.setdefault("ANSIBLE_CONFIG", os.path.join(REPO, "ansible.cfg"))
    env["ANSIBLE_COLLECTIONS_PATH"] = os.path.join(REPO, ".build", "collections")
    env["ANSIBLE_FORCE_COLOR"] = "0"
    env["ANSIBLE_NOCOLOR"] = "1"
    env["ANSIBLE_PIPELINING"] = "1"  # as the scenario's converge (molecule.yml)
    env["ANSIBLE_CALLBACK_RESULT_FORMAT"] = "json"  # one message, one line: tests search it verbatim
    cmd = [binary, "-i", inventory()]
    for extra in inventories:
        cmd += ["-i", str(extra)]
    cmd += [str(playbook), "-e", "gpufleet_config_file=%s" % config_file()] + list(args)
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    output = proc.stdout + proc.stderr
    recap = {}
    in_recap = False
    for line in output.splitlines():
        if line.startswith("PLAY RECAP"):
            in_recap = True
        elif in_recap and "ok=" in line:
            name, counts = line.split(":", 1)
            recap[name.strip()] = {k: int(v) for k, v in (part.split("=") for part in counts.split())}
    return proc.returncode, output, recap


def show(output, lines=80):
    """The tail of a run, for assertion messages."""
    return "\n".join(output.splitlines()[-lines:])


def load_report(path=REPORT):
    with open(path) as handle:
        return json.load(handle)


@pytest.fixture
def node():
    """A testinfra host per container, through molecule's inventory."""
    def get(name):
        return testinfra.get_host("ansible://%s?ansible_inventory=%s" % (name, inventory()))
    return get


def toml(host, path):
    """Parse a TOML file with the container's Python (tomllib), so the file is checked where it lives."""
    result = host.run("python3 -c 'import json, sys, tomllib; print(json.dumps(tomllib.load(open(sys.argv[1], \"rb\"))))' %s", path)
    assert result.rc == 0, "%s is not valid TOML:\n%s\n%s" % (path, result.stderr, host.file(path).content_string)
    return json.loads(result.stdout)
