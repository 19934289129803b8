"""Small helpers the lab test modules share."""
import time


def wait_for(predicate, timeout=180.0, interval=1.0, what="condition"):
    """Poll predicate until it returns something truthy (returned); fail naming what and the last value."""
    deadline = time.time() + timeout
    last = None
    while True:
        last = predicate()
        if last:
            return last
        if time.time() > deadline:
            raise AssertionError("timed out after %.0fs waiting for %s (last: %r)" % (timeout, what, last))
        time.sleep(interval)


def ensure_gpu_layer(lab, ansible_playbook):
    """The GPU layer of the lab config converged: H100 nodes advertise their 1g.10gb MIG slices and L40S nodes
    their time-sliced shares (4 GPUs x 4 replicas). The whole suite has converged it by the time later modules
    run (test_gpu_layer); a module run alone converges it here (playbooks/gpu.yml with the lab config)."""
    def ready():
        for node in lab.gpu_nodes():
            got = lab.core.read_node(node["name"]).status.allocatable or {}
            if node["pool"] == "h100" and int(got.get("nvidia.com/mig-1g.10gb", "0")) == 0:
                return False
            if node["pool"] == "l40s" and got.get("nvidia.com/gpu") != "16":
                return False
        return True
    if not ready():
        result = ansible_playbook("playbooks/gpu.yml")
        assert result.rc == 0, result
        wait_for(ready, timeout=300, what="MIG slices on the H100 nodes and shares on the L40S nodes")
