"""etcd + kube-apiserver + kube-controller-manager + kube-scheduler, on 127.0.0.1 only."""
import base64
import json
import os
import ssl
import time
import urllib.error
import urllib.request

import yaml

from . import pki, procs, settings

KUBECONFIGS = os.path.join(settings.RUN, "kubeconfigs")


def _b64(path):
    with open(path, "rb") as fh:
        return base64.b64encode(fh.read()).decode()


def kubeconfig_for(user, path=None):
    """Write a kubeconfig for one lab identity (certs embedded) and return its path."""
    if path is None:
        os.makedirs(KUBECONFIGS, exist_ok=True)
        path = os.path.join(KUBECONFIGS, user + ".conf")
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "gpufleet-lab", "cluster": {
            "server": settings.api_url(), "certificate-authority-data": _b64(pki.path("ca"))}}],
        "users": [{"name": user, "user": {
            "client-certificate-data": _b64(pki.path(user)),
            "client-key-data": _b64(pki.path(user, "key"))}}],
        "contexts": [{"name": "gpufleet-lab", "context": {"cluster": "gpufleet-lab", "user": user}}],
        "current-context": "gpufleet-lab",
    }
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        yaml.safe_dump(doc, fh, default_flow_style=False)
    os.replace(tmp, path)
    return path


def write_kubeconfigs():
    for user in ("controller-manager", "scheduler", "kwok", "gpu-simulator"):
        kubeconfig_for(user)
    return kubeconfig_for("admin", settings.KUBECONFIG)


def ssl_context(user="admin"):
    ctx = ssl.create_default_context(cafile=pki.path("ca"))
    ctx.load_cert_chain(pki.path(user), pki.path(user, "key"))
    return ctx


def http_get(url, ctx=None, timeout=3.0):
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=timeout) as resp:
            return resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as exc:
        return None, str(exc)


def _wait(what, check, timeout, proc_name):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        ok, last = check()
        if ok:
            return
        if not procs.alive(proc_name):
            raise procs.LabError("%s exited during startup (%s); last log lines (%s):\n%s"
                                 % (proc_name, procs.exit_status(proc_name) or "exit status unknown",
                                    procs.logfile(proc_name), procs.tail(proc_name)))
        time.sleep(0.2)
    raise procs.LabError("%s not healthy after %ds (%s); log %s:\n%s"
                         % (what, timeout, last, procs.logfile(proc_name), procs.tail(proc_name)))


def etcd_healthy():
    status, body = http_get("http://%s:%d/health" % (settings.HOST, settings.PORTS["etcd"]))
    try:
        return status == 200 and json.loads(body).get("health") == "true", body
    except ValueError:
        return False, body


def apiserver_ready(ctx=None):
    status, body = http_get(settings.api_url() + "/readyz", ctx or ssl_context())
    return status == 200, "%s %s" % (status, body[-300:])


def start_etcd():
    data = os.path.join(settings.RUN, "etcd-data")
    client = "http://%s:%d" % (settings.HOST, settings.PORTS["etcd"])
    peer = "http://%s:%d" % (settings.HOST, settings.PORTS["etcd-peer"])
    procs.start("etcd", [
        settings.binary("etcd"),
        "--name=lab-cp-1",
        "--data-dir=" + data,
        "--listen-client-urls=" + client,
        "--advertise-client-urls=" + client,
        "--listen-peer-urls=" + peer,
        "--initial-advertise-peer-urls=" + peer,
        "--initial-cluster=lab-cp-1=" + peer,
        "--initial-cluster-state=new",
        "--quota-backend-bytes=8589934592",
        "--snapshot-count=10000",
        "--unsafe-no-fsync=true",  # lab only: a throwaway store on one machine, rebuilt on each lab-up
        "--log-level=warn",
    ])
    _wait("etcd", etcd_healthy, 30, "etcd")


def write_egress_config():
    """kube-apiserver dials the cluster network (webhooks, aggregated APIs) through pod_host's proxy."""
    from . import egress, pod_host
    path = os.path.join(settings.RUN, "egress-selector.yaml")
    with open(path, "w") as fh:
        yaml.safe_dump(egress.selector_config(pod_host.SOCKET), fh, sort_keys=False)
    return path


def start_apiserver():
    p = pki.path
    procs.start("kube-apiserver", [
        settings.binary("kube-apiserver"),
        "--bind-address=" + settings.HOST,
        "--advertise-address=" + settings.HOST,
        "--secure-port=%d" % settings.PORTS["apiserver"],
        "--etcd-servers=http://%s:%d" % (settings.HOST, settings.PORTS["etcd"]),
        "--tls-cert-file=" + p("apiserver"),
        "--tls-private-key-file=" + p("apiserver", "key"),
        "--client-ca-file=" + p("ca"),
        "--kubelet-client-certificate=" + p("apiserver-kubelet-client"),
        "--kubelet-client-key=" + p("apiserver-kubelet-client", "key"),
        "--kubelet-certificate-authority=" + p("ca"),
        "--kubelet-preferred-address-types=InternalIP,Hostname",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        "--service-account-key-file=" + p("sa", "pub"),
        "--service-account-signing-key-file=" + p("sa", "key"),
        "--service-cluster-ip-range=" + settings.SERVICE_CIDR,
        "--authorization-mode=Node,RBAC",
        "--enable-admission-plugins=NodeRestriction",
        "--allow-privileged=true",
        "--enable-bootstrap-token-auth=true",
        # The aggregation layer, as kubeadm/Kubespray configure it (aggregated APIs such as Kueue's visibility).
        "--requestheader-client-ca-file=" + p("ca"),
        "--requestheader-allowed-names=front-proxy-client",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-username-headers=X-Remote-User",
        "--proxy-client-cert-file=" + p("front-proxy-client"),
        "--proxy-client-key-file=" + p("front-proxy-client", "key"),
        # Loopback addresses are not valid Endpoints; nothing routes to the apiserver's Service here.
        "--endpoint-reconciler-type=none",
        # Webhook and aggregated-API calls go to the lab's egress proxy (egress.py), which routes a
        # Service to the real controller process that plays its pod; see docs/lab.md.
        "--egress-selector-config-file=" + write_egress_config(),
        "--profiling=false",
        "--event-ttl=1h",
        "--v=1",
    ])
    _wait("kube-apiserver", apiserver_ready, 90, "kube-apiserver")


def _component_healthy(name):
    def check():
        status, body = http_get("https://%s:%d/healthz" % (settings.HOST, settings.PORTS[name]),
                                ssl._create_unverified_context())  # self-signed serving cert; loopback only
        return status == 200, "%s %s" % (status, body[-200:])
    return check


def start_controller_manager():
    p = pki.path
    kc = os.path.join(KUBECONFIGS, "controller-manager.conf")
    procs.start("kube-controller-manager", [
        settings.binary("kube-controller-manager"),
        "--bind-address=" + settings.HOST,
        "--secure-port=%d" % settings.PORTS["controller-manager"],
        "--tls-cert-file=" + p("controller-manager-serving"),
        "--tls-private-key-file=" + p("controller-manager-serving", "key"),
        "--kubeconfig=" + kc,
        "--authentication-kubeconfig=" + kc,
        "--authorization-kubeconfig=" + kc,
        "--client-ca-file=" + p("ca"),
        "--root-ca-file=" + p("ca"),
        "--service-account-private-key-file=" + p("sa", "key"),
        "--cluster-signing-cert-file=" + p("ca"),
        "--cluster-signing-key-file=" + p("ca", "key"),
        "--use-service-account-credentials=true",
        "--controllers=*,bootstrapsigner,tokencleaner",
        "--service-cluster-ip-range=" + settings.SERVICE_CIDR,
        "--leader-elect=false",
        "--kube-api-qps=200",
        "--kube-api-burst=400",
        "--v=1",
    ])


def start_scheduler():
    p = pki.path
    kc = os.path.join(KUBECONFIGS, "scheduler.conf")
    procs.start("kube-scheduler", [
        settings.binary("kube-scheduler"),
        "--bind-address=" + settings.HOST,
        "--secure-port=%d" % settings.PORTS["scheduler"],
        "--tls-cert-file=" + p("scheduler-serving"),
        "--tls-private-key-file=" + p("scheduler-serving", "key"),
        "--kubeconfig=" + kc,
        "--authentication-kubeconfig=" + kc,
        "--authorization-kubeconfig=" + kc,
        "--client-ca-file=" + p("ca"),
        "--leader-elect=false",
        "--v=1",
    ])


def wait_components(timeout=60):
    _wait("kube-controller-manager", _component_healthy("controller-manager"), timeout, "kube-controller-manager")
    _wait("kube-scheduler", _component_healthy("scheduler"), timeout, "kube-scheduler")
