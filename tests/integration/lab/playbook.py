"""Run ansible-playbook against the lab the way a user does, and read the result.

Every cluster-role test uses this: converge (changed), converge again (changed=0), `--check --diff`
on the converged lab (changed=0). Helm and kubectl come from the lab's own build.
"""
import os
import re
import subprocess
import sys
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BIN = os.path.dirname(sys.executable)
# LAB_CONFIG: another config (e.g. a copy whose cluster.kubeconfig is a lab on other ports); conftest reads it too
LAB_CONFIG = os.environ.get("LAB_CONFIG", os.path.join(ROOT, "inventories", "lab", "config.yml"))
RECAP = re.compile(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)", re.M)


@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str

    @property
    def recap(self):
        """{host: {"ok": n, "changed": n, "unreachable": n, "failed": n, "skipped": n}}"""
        return {m.group(1): dict(zip(("ok", "changed", "unreachable", "failed", "skipped"),
                                     (int(g) for g in m.groups()[1:]))) for m in RECAP.finditer(self.stdout)}

    @property
    def changed(self):
        return sum(h["changed"] for h in self.recap.values())

    def changed_tasks(self):
        """Names of the tasks that reported changed (for assertion messages)."""
        tasks, current = [], None
        for line in self.stdout.splitlines():
            if line.startswith("TASK ["):
                current = line
            elif line.startswith("changed:") and current:
                tasks.append(current)
        return tasks

    def __str__(self):
        return "rc=%d\n%s\n%s" % (self.rc, self.stdout[-6000:], self.stderr[-3000:])


def lab_bin():
    sys.path.insert(0, os.path.join(ROOT, "lab"))
    from gpufleet_lab import settings  # noqa: E402
    return os.path.dirname(settings.binary("helm"))


def ansible_playbook(playbook, *args, config=LAB_CONFIG, extra_vars=None, check=False, diff=False, timeout=900,
                     path_prepend=None, collections_append=None):
    """ansible-playbook -i <config> <playbook> [args]; returns a Result (never raises on failure).

    path_prepend: a directory put first on PATH (e.g. shims that must not be called). collections_append: a
    collections directory searched after .build/collections (e.g. the lint stand-in of Kubespray)."""
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
        ANSIBLE_COLLECTIONS_PATH=os.pathsep.join(p for p in (os.path.join(ROOT, ".build", "collections"),
                                                             collections_append) if p),
        ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
        PATH=os.pathsep.join(p for p in (path_prepend, lab_bin(), BIN, env.get("PATH", "")) if p),
    )
    command = [os.path.join(BIN, "ansible-playbook"), "-i", str(config), os.path.join(ROOT, playbook)]
    for key, value in (extra_vars or {}).items():
        command += ["-e", "%s=%s" % (key, value)]
    if check:
        command.append("--check")
    if diff:
        command.append("--diff")
    command += list(args)
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    return Result(proc.returncode, proc.stdout, proc.stderr)
