"""Small helpers the lab test modules share."""
import time

import pytest


def cert_manager_group_missing():
    """Why the lab runs cert-manager, KServe and Slinky from STAND-IN charts, or None when they are real.

    cert-manager's controller builds only from source extracts (its cmd modules are not on the Go module proxy,
    lab/build.sh); without them lab-build warns and goes on, and every chart that needs cert-manager's
    certificates stays a stand-in (lab/gpufleet_lab/charts.py NEEDS_CERT_MANAGER, docs/lab.md)."""
    from gpufleet_lab import charts, settings
    if charts.NEEDS_CERT_MANAGER <= charts.REAL_CHARTS:
        return None
    return ("the lab runs cert-manager, KServe and Slinky from STAND-IN charts: cert-manager's controller is not "
            "built in %s (lab-build needs the source extracts cert-manager-v1.21.1 and vcert under "
            "$GPUFLEET_UPSTREAM_SRC, default ../shared/upstream/src; docs/lab.md)" % settings.CACHE)


def require_cert_manager_group():
    """Skip, saying why, a test that needs the real cert-manager, KServe or Slinky controllers."""
    reason = cert_manager_group_missing()
    if reason:
        pytest.skip(reason)


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


def scrape(pid, port, token=None, path="/metrics", timeout=10):
    """(status, body) of an HTTPS GET on 127.0.0.1:port inside the network namespace of pid: a controller the
    lab's pod host runs (lab/gpufleet_lab/pod_host.py gives each played pod a namespace of its own), reached
    the way Prometheus reaches its pod, with a bearer token when given. The certificate is the controller's
    self-signed one (ServiceMonitors of these charts set insecureSkipVerify too)."""
    import ssl
    from gpufleet_lab import netns

    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    sock = ctx.wrap_socket(netns.connect(pid, port, timeout=timeout))
    auth = "Authorization: Bearer %s\r\n" % token if token else ""
    sock.sendall(("GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n%s\r\n" % (path, auth)).encode())
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    sock.close()
    head, _, body = data.decode("utf-8", "replace").partition("\r\n\r\n")
    return int(head.split()[1]), body


def played_pid(namespace, deployment):
    """pid of the controller process the lab's pod host runs for the first container of a Deployment's pod."""
    import json
    import os

    from gpufleet_lab import settings

    with open(os.path.join(settings.RUN, "pod-host.json")) as handle:
        pods = json.load(handle)["pods"]
    for key, pod in sorted(pods.items()):
        if key.startswith("%s/%s/" % (namespace, deployment)) and pod.get("status") == "running":
            return pod["pid"]
    return None


CORDONED_BY = "gpufleet.io/cordoned-by"


def cordons(lab):
    """{node: {"unschedulable": bool, "mark": gpufleet.io/cordoned-by or None}} of every node that is cordoned or
    carries the collection's cordon mark."""
    out = {}
    for node in lab.core.list_node().items:
        ann = node.metadata.annotations or {}
        if node.spec.unschedulable or CORDONED_BY in ann:
            out[node.metadata.name] = {"unschedulable": bool(node.spec.unschedulable), "mark": ann.get(CORDONED_BY)}
    return out
