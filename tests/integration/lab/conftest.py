"""Fixtures for the lab suite: a session-wide lab, brought up when it is not running.

The lab (lab/lab.py) is a real kube-apiserver on 127.0.0.1 with KWOK-simulated GPU nodes. When the
binaries are not built the suite is skipped with a hint (`make lab-build`). A lab this session
started is stopped at the end (set GPUFLEET_LAB_KEEP=1 to keep it); a lab that was already running
is left running.
"""
import fcntl
import os
import sys
import time
import uuid

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
LAB_DIR = os.path.join(ROOT, "lab")
if LAB_DIR not in sys.path:
    sys.path.insert(0, LAB_DIR)

from gpufleet_lab import cli, nodes, settings  # noqa: E402

LAB_CONFIG = os.environ.get("LAB_CONFIG", settings.DEFAULT_CONFIG)


class Lab(object):
    def __init__(self, state, started_here):
        from kubernetes import client
        self.state = state
        self.started_here = started_here
        self.config = nodes.load_config(LAB_CONFIG)
        self.api_client = cli.core_api()
        self.core = client.CoreV1Api(self.api_client)
        self.apps = client.AppsV1Api(self.api_client)
        self.ext = client.ApiextensionsV1Api(self.api_client)
        self.custom = client.CustomObjectsApi(self.api_client)

    def gpu_nodes(self):
        return [n for n in self.config["nodes"] if n.get("pool") and n.get("simulated")]

    def reset_nodes(self, names):
        """Recreate simulated nodes from the config: their labels, capacity and GPU simulator state."""
        return cli.reset_nodes(names, LAB_CONFIG)


@pytest.fixture(scope="session")
def lab():
    missing = [b for b in cli.BINARIES if not os.access(settings.binary(b), os.X_OK)]
    if missing:
        pytest.skip("lab binaries not built (%s): run `make lab-build`" % ", ".join(missing))
    # One lab test session at a time per run dir: the suite ends with lab-down.
    lock = open(settings.RUN.rstrip("/") + ".tests.lock", "w")
    deadline = time.time() + 900
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.time() > deadline:
                pytest.fail("another lab test session holds %s" % lock.name)
            time.sleep(1)
    was_running = cli.all_running()
    state = cli.up(LAB_CONFIG, quiet=True)
    lab = Lab(state, started_here=not was_running)
    lab.was_running = was_running
    yield lab
    if not was_running and not os.environ.get("GPUFLEET_LAB_KEEP"):
        cli.down(quiet=True)
    lock.close()


@pytest.fixture
def namespace(lab):
    """A throwaway namespace, deleted after the test."""
    name = "lab-test-" + uuid.uuid4().hex[:6]
    lab.core.create_namespace({"metadata": {"name": name}})
    yield name
    lab.core.delete_namespace(name, grace_period_seconds=0)
