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


# Runs the command in a fresh Python process and prints, last on stderr, the largest RSS (KiB) of the
# command's own process tree: RUSAGE_CHILDREN of the test process would also count every earlier child of the
# session (the lab's API server, for one).
_MEASURE = ("import resource, subprocess, sys\n"
            "code = subprocess.call(sys.argv[1:])\n"
            "sys.stderr.write('\\nmaxrss_kib=%d\\n' % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
            "sys.exit(code)\n")


def run_measured(*args, **extra_env):
    """run(), and the largest resident set (KiB) of any process of that run alone."""
    result = subprocess.run([sys.executable, "-c", _MEASURE, os.path.join(BIN, args[0])] + list(args[1:]), cwd=ROOT,
                            env=env(**extra_env), capture_output=True, text=True, timeout=300, check=False)
    head, _sep, tail = result.stderr.rpartition("\nmaxrss_kib=")
    result.stderr = head
    return result, int(tail.strip())
