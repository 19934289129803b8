"""Helpers of the molecule verifiers: the scenario, what the shim prints, and ansible-playbook runs
against the scenario's container (molecule's own inventory, docker exec connection)."""
import json
import os
import subprocess
import sys

import pytest

SCENARIO = os.environ.get("MOLECULE_SCENARIO_NAME", "")
REPO = os.environ.get("MOLECULE_PROJECT_DIRECTORY") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
SHARED = os.environ.get("GPUFLEET_SHARED") or os.path.join(os.path.dirname(REPO), "shared")
REAL_CAPTURES = os.path.isdir(os.path.join(SHARED, "fixtures", "nvidia-smi", "qx"))
HOST = "gpufleet-gpu-node"
FACT = "/etc/ansible/facts.d/gpufleet_gpus.fact"
DROPIN = "/etc/containerd/conf.d/99-gpufleet-nvidia.toml"


def inventory():
    return os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "inventory")


def ansible_playbook(playbook, *args, timeout=300):
    """Run ansible-playbook like molecule does; returns (rc, output, recap of the container)."""
    binary = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    env = dict(os.environ)
    env.setdefault("ANSIBLE_CONFIG", os.path.join(REPO, "ansible.cfg"))
    env["ANSIBLE_COLLECTIONS_PATH"] = os.path.join(REPO, ".build", "collections")
    env["ANSIBLE_FORCE_COLOR"] = "0"
    env["ANSIBLE_NOCOLOR"] = "1"
    env["ANSIBLE_CALLBACK_RESULT_FORMAT"] = "json"  # one message, one line: tests search it verbatim
    cmd = [binary, "-i", inventory(), str(playbook)] + list(args)
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    output = proc.stdout + proc.stderr
    recap = {}
    for line in output.splitlines():
        if line.startswith(HOST) and "ok=" in line:
            recap = dict(part.split("=") for part in line.split(":", 1)[1].split())
            recap = {k: int(v) for k, v in recap.items()}
    return proc.returncode, output, recap


def show(output, lines=80):
    """The tail of a run, for assertion messages."""
    return "\n".join(output.splitlines()[-lines:])


@pytest.fixture
def diagnostics(host):
    """Dump what explains a failure: the files the role writes and the container's failed units."""
    yield
    # runs after the test; pytest shows it only when the test failed
    for cmd in ("cat %s" % FACT, "ls -la /etc/containerd /etc/containerd/conf.d", "cat /etc/containerd/config.toml",
                "cat %s" % DROPIN, "systemctl --failed --no-pager", "journalctl -n 30 --no-pager"):
        result = host.run(cmd)
        print("$ %s (rc %s)\n%s%s" % (cmd, result.rc, result.stdout, result.stderr))


def fact(host):
    return json.loads(host.file(FACT).content_string)


def toml(host, path):
    """Parse a TOML file with the container's Python (tomllib), so the file is checked where it lives."""
    result = host.run("python3 -c 'import json, sys, tomllib; print(json.dumps(tomllib.load(open(sys.argv[1], \"rb\"))))' %s", path)
    assert result.rc == 0, "%s is not valid TOML:\n%s\n%s" % (path, result.stderr, host.file(path).content_string)
    return json.loads(result.stdout)
