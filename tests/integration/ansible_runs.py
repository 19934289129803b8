"""Real ansible-playbook / ansible-inventory processes against this checkout, touching no cluster
(shared by test_validate_playbook.py, test_hostile_config.py and test_secret_leaks.py)."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
UNIT_MODULE_UTILS = os.path.join(ROOT, "tests", "unit", "plugins", "module_utils")  # hostile_files.py, leak_cases.py


def env(**extra):
    values = dict(os.environ)
    values.update(ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
                  ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".build", "collections"),
                  ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", ANSIBLE_TIMEOUT="5",
                  ANSIBLE_SSH_ARGS="-o ConnectTimeout=3 -o BatchMode=yes")
    values.update(extra)
    return values


def run(*args, **extra_env):
    return subprocess.run([os.path.join(BIN, args[0])] + list(args[1:]), cwd=ROOT, env=env(**extra_env),
                          capture_output=True, text=True, timeout=300, check=False)
