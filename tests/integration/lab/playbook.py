"""Run ansible-playbook against the lab the way a user does, and read the result.

Every cluster-role test uses this: converge (changed), converge again (changed=0), `--check --diff`
on the converged lab (changed=0). Helm and kubectl come from the lab's own build.
"""
import os
import re
import signal
import subprocess
import sys
import threading
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


def _env(path_prepend=None, collections_append=None):
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
        ANSIBLE_COLLECTIONS_PATH=os.pathsep.join(p for p in (os.path.join(ROOT, ".build", "collections"),
                                                             collections_append) if p),
        ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", PYTHONUNBUFFERED="1",
        PATH=os.pathsep.join(p for p in (path_prepend, lab_bin(), BIN, env.get("PATH", "")) if p),
    )
    return env


def _command(playbook, args, config, extra_vars=None):
    command = [os.path.join(BIN, "ansible-playbook"), "-i", str(config), os.path.join(ROOT, playbook)]
    for key, value in (extra_vars or {}).items():
        command += ["-e", "%s=%s" % (key, value)]
    return command + list(args)


def ansible_playbook(playbook, *args, config=LAB_CONFIG, extra_vars=None, check=False, diff=False, timeout=900,
                     path_prepend=None, collections_append=None):
    """ansible-playbook -i <config> <playbook> [args]; returns a Result (never raises on failure).

    path_prepend: a directory put first on PATH (e.g. shims that must not be called). collections_append: a
    collections directory searched after .build/collections (e.g. the lint stand-in of Kubespray)."""
    flags = (["--check"] if check else []) + (["--diff"] if diff else [])
    command = _command(playbook, flags + list(args), config, extra_vars)
    proc = subprocess.run(command, cwd=ROOT, env=_env(path_prepend, collections_append), capture_output=True,
                          text=True, timeout=timeout, check=False)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def killed_run(playbook, *args, kill_at=None, delay=0.0, config=LAB_CONFIG, collections_append=None, timeout=600):
    """Run the playbook and SIGKILL its whole process group (as a lost SSH session or a killed CI job would)
    `delay` s after the task start that `kill_at(tasks)` first accepts; `tasks` are the names of the tasks started
    so far (the `TASK [...]` lines), the last one just now. kill_at=None: the run is not killed.
    Returns (rc, tasks seen, output)."""
    proc = subprocess.Popen(_command(playbook, args, config), cwd=ROOT, env=_env(None, collections_append),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines, tasks = [], []
    timer = None
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("TASK ["):
            tasks.append(line.split("[", 1)[1].rsplit("]", 1)[0])
            if kill_at is not None and timer is None and kill_at(tasks):
                timer = threading.Timer(delay, os.killpg, (proc.pid, signal.SIGKILL))
                timer.start()
    proc.wait(timeout=timeout)
    if timer is not None:
        timer.cancel()
    return proc.returncode, tasks, "".join(lines)
