"""Pod host: the lab plays the charts' controller pods with the real controller binaries.

The real upstream charts render their controllers as Deployments. KWOK schedules their pods on
simulated nodes and reports them Running, but runs no container. For every such pod whose
container image is a controller the lab has built (``controllers.REGISTRY``), this process does
what a kubelet would do for that container, on 127.0.0.1:

* identity: a token for the pod's ServiceAccount (TokenRequest bound to the pod), in a kubeconfig
  and at the in-cluster token path, so the chart's RBAC is what the controller gets;
* volumes: the pod's ConfigMap, Secret, projected and emptyDir volumes written under a per-pod
  root and kept in sync (as the kubelet refreshes them); a missing required Secret/ConfigMap holds
  the container (ContainerCreating) until it exists;
* env: values, fieldRefs (namespace, pod name, node name, pod IP, ServiceAccount), Secret and
  ConfigMap keys; ``$(VAR)`` in args expanded;
* network: a network namespace of its own (netns.py) with only a loopback, on which the lab API
  server is forwarded, so the chart's ports and addresses are used unchanged and nothing listens
  on the lab machine's interfaces;
* args: the chart's args, with paths under volume mounts mapped into the pod root (controllers.py
  does the per-binary part);
* restarts with back-off when the process exits, and a stop when the pod goes away.

It also serves the egress proxy (egress.py) through which kube-apiserver reaches the played
webhook servers, and writes its state to ``<run>/pod-host.json`` for ``lab.py status``.

Safety: like the GPU simulator it refuses to start unless the API server is the lab's own on
127.0.0.1 and the lab marker namespace carries this lab's id.
"""
import argparse
import base64
import copy
import http.client
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from . import controllers, egress, netns, procs, settings

STATE_FILE = os.path.join(settings.RUN, "pod-host.json")
PODS_DIR = os.path.join(settings.RUN, "pods")
SOCKET = os.path.join(settings.RUN, "egress.sock")
INTERVAL = 1.0
TOKEN_SECONDS = 86400
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
KUBECONFIG_IN_POD = "/var/run/gpufleet-lab/kubeconfig"


def log(msg):
    sys.stderr.write("%s [pod-host] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


class Kube:
    """Minimal REST client with the lab admin identity (pod-host acts as the simulated kubelets)."""

    def __init__(self):
        from . import control_plane
        self.ctx = control_plane.ssl_context("admin")
        self.base = settings.api_url()

    def request(self, method, path, body=None, timeout=20, content_type="application/json"):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": content_type, "Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=timeout) as resp:
                return json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise RuntimeError("%s %s: %d %s" % (method, path, exc.code, exc.read()[:300].decode(errors="replace")))

    def get(self, path):
        return self.request("GET", path)

    def items(self, path):
        doc = self.get(path)
        return (doc or {}).get("items") or []


def _matches(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _write(path, data, mode=0o644):
    """Write only when the content differs (atomic); returns True when it changed."""
    if isinstance(data, str):
        data = data.encode()
    try:
        with open(path, "rb") as fh:
            if fh.read() == data:
                return False
    except OSError:
        pass
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)
    return True


class Waiting(Exception):
    """The container cannot start yet (like ContainerCreating); the message says why."""


class Played:
    """One container of one pod, played by a real binary."""

    def __init__(self, host, spec, deploy, container_name):
        self.host = host
        self.spec = spec
        self.ns = deploy["metadata"]["namespace"]
        self.deploy = deploy["metadata"]["name"]
        self.container_name = container_name
        self.key = "%s/%s/%s" % (self.ns, self.deploy, container_name)
        self.proc = re.sub(r"[^A-Za-z0-9_.-]", "_", "pod-%s.%s.%s" % (self.ns, self.deploy, container_name))
        self.root = os.path.join(PODS_DIR, "%s_%s_%s" % (self.ns, self.deploy, container_name))
        self.pod = None
        self.pod_uid = None
        self.status = "waiting"
        self.reason = "pod not scheduled yet"
        self.restarts = 0
        self.next_start = 0.0
        self.ready = None
        self.started = None
        self.mounts = {}

    # -- paths, ports, env -------------------------------------------------------------------
    def path(self, pod_path):
        return os.path.join(self.root, "fs", pod_path.lstrip("/"))

    def port(self, container_port):
        """The port the process listens on for a container port: the same, in the pod's own namespace."""
        return int(container_port)

    def connect(self, port, timeout=10):
        if not self.pid or not procs.alive(self.proc):
            raise OSError("%s is not running" % self.key)
        return netns.connect(self.pid, int(port), timeout=timeout)


    @property
    def container(self):
        for c in self.pod["spec"].get("containers") or []:
            if c["name"] == self.container_name:
                return c
        raise Waiting("container %s not in pod %s" % (self.container_name, self.pod["metadata"]["name"]))

    def _field(self, ref):
        meta, spec, status = self.pod["metadata"], self.pod["spec"], self.pod.get("status") or {}
        path = ref.get("fieldPath", "")
        table = {"metadata.namespace": meta["namespace"], "metadata.name": meta["name"], "metadata.uid": meta["uid"],
                 "spec.nodeName": spec.get("nodeName", ""), "spec.serviceAccountName": self.service_account,
                 "status.podIP": status.get("podIP", ""), "status.hostIP": status.get("hostIP", "")}
        if path in table:
            return table[path]
        m = re.match(r"metadata\.(labels|annotations)\['(.+)'\]$", path)
        if m:
            return (meta.get(m.group(1)) or {}).get(m.group(2), "")
        return ""

    def _key_ref(self, kind, ref):
        obj = self.host.kube.get("/api/v1/namespaces/%s/%s/%s" % (self.ns, kind, ref["name"]))
        if obj is None:
            if ref.get("optional"):
                return None
            raise Waiting("%s %s/%s not found" % (kind[:-1], self.ns, ref["name"]))
        if kind == "secrets":
            raw = (obj.get("data") or {}).get(ref["key"])
            return base64.b64decode(raw).decode() if raw is not None else None
        return (obj.get("data") or {}).get(ref["key"])

    def environment(self):
        env = {}
        for item in self.container.get("env") or []:
            if "value" in item:
                env[item["name"]] = _expand(item["value"], env)
                continue
            src = item.get("valueFrom") or {}
            if "fieldRef" in src:
                env[item["name"]] = self._field(src["fieldRef"])
            elif "secretKeyRef" in src:
                val = self._key_ref("secrets", src["secretKeyRef"])
                if val is not None:
                    env[item["name"]] = val
            elif "configMapKeyRef" in src:
                val = self._key_ref("configmaps", src["configMapKeyRef"])
                if val is not None:
                    env[item["name"]] = val
            elif "resourceFieldRef" in src:
                env[item["name"]] = "1"
        return env

    @property
    def service_account(self):
        return self.pod["spec"].get("serviceAccountName") or "default"

    # -- volumes and identity ----------------------------------------------------------------
    def _volume_files(self, vol):
        """{relative path: bytes} of a volume, or None for an emptyDir-like directory."""
        kube = self.host.kube
        if "configMap" in vol or "secret" in vol:
            kind = "configmaps" if "configMap" in vol else "secrets"
            src = vol.get("configMap") or vol.get("secret")
            name = src.get("name") or src.get("secretName")
            obj = kube.get("/api/v1/namespaces/%s/%s/%s" % (self.ns, kind, name))
            if obj is None:
                if src.get("optional"):
                    return {}
                raise Waiting("%s %s/%s not found (volume %s)" % (kind[:-1], self.ns, name, vol["name"]))
            data = {}
            for k, v in (obj.get("data") or {}).items():
                data[k] = base64.b64decode(v) if kind == "secrets" else v.encode()
            for k, v in (obj.get("binaryData") or {}).items():
                data[k] = base64.b64decode(v)
            if src.get("items"):
                return {it["path"]: data[it["key"]] for it in src["items"] if it["key"] in data}
            return data
        if "projected" in vol:
            out = {}
            for source in vol["projected"].get("sources") or []:
                if "serviceAccountToken" in source:
                    out[source["serviceAccountToken"].get("path", "token")] = self.token.encode()
                for kind in ("configMap", "secret"):
                    if kind in source:
                        files = self._volume_files({"name": vol["name"], kind: source[kind]})
                        out.update(files or {})
                if "downwardAPI" in source:
                    for it in source["downwardAPI"].get("items") or []:
                        if "fieldRef" in it:
                            out[it["path"]] = self._field(it["fieldRef"]).encode()
            return out
        return None

    def materialize(self):
        """Write the pod's volumes and the ServiceAccount identity under the pod root."""
        mounts = {}
        vols = {v["name"]: v for v in self.pod["spec"].get("volumes") or []}
        for vm in self.container.get("volumeMounts") or []:
            vol = vols.get(vm["name"])
            if vol is None:
                continue
            files = self._volume_files(vol)
            target = self.path(vm["mountPath"])
            mounts[vm["mountPath"]] = vm["name"]
            if files is None:
                os.makedirs(target, exist_ok=True)
                continue
            if vm.get("subPath"):
                if vm["subPath"] in files:
                    _write(target, files[vm["subPath"]], 0o600)
                continue
            for rel, data in files.items():
                _write(os.path.join(target, rel), data, 0o600)
        self.mounts = mounts
        _write(self.path(SA_DIR + "/token"), self.token, 0o600)
        _write(self.path(SA_DIR + "/namespace"), self.ns)
        with open(_ca_path(), "rb") as fh:
            _write(self.path(SA_DIR + "/ca.crt"), fh.read())
        # In-cluster config is what the controllers use (KUBERNETES_SERVICE_HOST/PORT, the token mount); the
        # same identity as a kubeconfig, at a pod path, for binaries whose chart passes --kubeconfig.
        self.kubeconfig = KUBECONFIG_IN_POD
        _write(self.path(KUBECONFIG_IN_POD), json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "lab",
            "clusters": [{"name": "lab", "cluster": {"server": settings.api_url(),
                                                      "certificate-authority": SA_DIR + "/ca.crt"}}],
            "users": [{"name": self.service_account, "user": {"tokenFile": SA_DIR + "/token"}}],
            "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": self.service_account,
                                                     "namespace": self.ns}}],
        }), 0o600)
        os.makedirs(os.path.join(self.root, "home"), exist_ok=True)
        os.makedirs(self.path("/tmp"), exist_ok=True)

    def refresh_token(self):
        meta = self.pod["metadata"]
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"expirationSeconds": TOKEN_SECONDS,
                         "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": meta["name"], "uid": meta["uid"]}}}
        resp = self.host.kube.request("POST", "/api/v1/namespaces/%s/serviceaccounts/%s/token"
                                      % (self.ns, self.service_account), body)
        if resp is None:
            raise Waiting("ServiceAccount %s/%s not found" % (self.ns, self.service_account))
        self.token = resp["status"]["token"]
        self.token_time = time.time()

    # -- process -----------------------------------------------------------------------------
    def argv(self):
        c = self.container
        env = self.environment()
        args = [_expand(a, env) for a in (c.get("args") or [])]
        return self.spec.argv(self, args), env

    def start(self):
        argv, env = self.argv()
        env = dict(env)
        env.update({"KUBERNETES_SERVICE_HOST": settings.HOST, "KUBERNETES_SERVICE_PORT": str(settings.PORTS["apiserver"]),
                    "HOME": "/tmp"})
        env.update(self.spec.env(self))
        binary = controllers.binary(self.spec.binary)
        procs.require_binary(binary)
        exe = netns.POD_BIN + "/" + self.spec.binary
        ready = os.path.join(self.root, "netns-ready")
        try:
            os.unlink(ready)
        except FileNotFoundError:
            pass
        cmd = netns.command(ready, self.path("/"), controllers.controller_bin(), [exe] + argv, self.spec.mounts(self))
        pid = procs.start(self.proc, cmd, env=_clean_env(env), exe=exe)
        self.pid = pid
        try:
            # The pod's loopback, and the lab API server on it (as a pod reaches its Service IP).
            netns.wait_unshared(pid)
            netns.run_in(pid, lambda: subprocess.run(["ip", "link", "set", "lo", "up"], check=True,
                                                     capture_output=True, timeout=10))
            api_port = settings.PORTS["apiserver"]
            listener = netns.listen(pid, api_port)
        except Exception:
            self.stop()
            raise
        self.forward_stop = threading.Event()
        threading.Thread(target=netns.forward, args=(listener, (settings.HOST, api_port), self.forward_stop),
                         daemon=True).start()
        with open(ready, "w"):
            pass
        self.started = time.time()
        self.status, self.reason = "running", "pid %d" % pid
        log("%s: started %s (pid %d) for pod %s" % (self.key, self.spec.binary, pid, self.pod["metadata"]["name"]))

    def stop(self):
        if self.forward_stop is not None:
            self.forward_stop.set()
        pid = procs.stop(self.proc)
        if self.pid and procs.alive(self.proc):  # still in the namespace bootstrap (before exec)
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if pid or self.pid:
            log("%s: stopped pid %d" % (self.key, pid or self.pid))
        self.pid = None

    def probe(self):
        """The container's readiness (or liveness) httpGet probe, sent inside the pod's namespace."""
        c = self.container
        probe = c.get("readinessProbe") or c.get("livenessProbe") or {}
        get = probe.get("httpGet")
        if not get:
            self.ready = None
            return
        port = get.get("port")
        if isinstance(port, str):
            port = next((p["containerPort"] for p in c.get("ports") or [] if p.get("name") == port), None)
        if port is None:
            self.ready = False
            return
        try:
            sock = self.connect(port, timeout=2)
            if get.get("scheme", "HTTP").upper() == "HTTPS":
                sock = ssl._create_unverified_context().wrap_socket(sock)  # a probe does not verify, as the kubelet
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.sock = sock
            conn.request("GET", get.get("path", "/"))
            self.ready = 200 <= conn.getresponse().status < 400
            conn.close()
        except (OSError, http.client.HTTPException):
            self.ready = False

    def sync_status(self):
        """Ready and the container status of the pod, from the real process (what a kubelet reports)."""
        if not self.pod:
            return
        running = bool(self.pid) and procs.alive(self.proc)
        c = self.container
        has_probe = bool((c.get("readinessProbe") or c.get("livenessProbe") or {}).get("httpGet"))
        ready = running and (self.ready is True if has_probe else True)
        status = self.pod.get("status") or {}
        statuses = copy.deepcopy(status.get("containerStatuses") or [])
        mine = next((c for c in statuses if c.get("name") == self.container_name), None)
        if mine is None:
            return  # KWOK has not started the pod yet
        if running:
            state = {"running": {"startedAt": _rfc3339(self.started)}}
        else:
            state = {"waiting": {"reason": "CrashLoopBackOff" if self.status == "crashloop" else "ContainerCreating",
                                 "message": self.reason[:300]}}
        want = {"ready": ready, "started": running, "restartCount": self.restarts}
        played = set(self.host.played_containers(self.pod))
        others = [c for c in statuses if c.get("name") not in played and not c.get("ready")]
        if all(mine.get(k) == v for k, v in want.items()) and set(mine.get("state") or {}) == set(state) \
                and not others:
            return
        mine.update(want, state=state)
        for c in others:  # a container the lab does not play (a metrics sidecar) is simulated Ready, as KWOK does
            c.update(ready=True, started=True)
        all_ready = all(c.get("ready") for c in statuses)
        now = _rfc3339(time.time())
        patch = {"status": {"containerStatuses": statuses, "conditions": [
            {"type": "ContainersReady", "status": str(all_ready), "lastTransitionTime": now},
            {"type": "Ready", "status": str(all_ready), "lastTransitionTime": now}]}}
        meta = self.pod["metadata"]
        self.host.kube.request("PATCH", "/api/v1/namespaces/%s/pods/%s/status" % (meta["namespace"], meta["name"]),
                               patch, content_type="application/strategic-merge-patch+json")

    def reconcile(self, pod):
        now = time.time()
        if pod is None:
            if procs.alive(self.proc):
                self.stop()
            self.pod, self.status, self.reason = None, "waiting", "no Running pod"
            return
        if self.pod_uid and pod["metadata"]["uid"] != self.pod_uid:
            if procs.alive(self.proc):
                log("%s: pod replaced by %s; restarting" % (self.key, pod["metadata"]["name"]))
                self.stop()
            # a new pod starts afresh: no restarts, no back-off, not ready until probed
            self.status, self.restarts, self.next_start, self.ready = "waiting", 0, 0.0, None
        new_pod = pod["metadata"]["uid"] != self.pod_uid
        self.pod, self.pod_uid = pod, pod["metadata"]["uid"]
        try:
            if new_pod or now - self.token_time > TOKEN_SECONDS / 2:
                self.refresh_token()
            self.materialize()
        except Waiting as exc:
            if not procs.alive(self.proc):
                self.status, self.reason = "waiting", str(exc)
            return
        if procs.alive(self.proc):
            self.probe()
            return
        if self.status == "running":
            self.restarts += 1
            code = procs.exit_status(self.proc) or "exit status unknown"
            self.reason = "exited (%s); log %s: %s" % (code, procs.logfile(self.proc),
                                                      procs.tail(self.proc, 3).replace("\n", " | ")[-400:])
            self.status = "crashloop"
            self.next_start = now + min(30, 2 ** min(self.restarts, 5))
            log("%s: %s" % (self.key, self.reason))
        if now < self.next_start:
            return
        try:
            self.start()
        except (Waiting, procs.LabError) as exc:
            self.status, self.reason = "waiting", str(exc)

    def state(self):
        return {"pod": self.pod["metadata"]["name"] if self.pod else None, "binary": self.spec.binary,
                "status": self.status, "reason": self.reason, "restarts": self.restarts, "ready": self.ready,
                "pid": self.pid, "log": procs.logfile(self.proc)}


Played.pid = None
Played.forward_stop = None
Played.token = ""
Played.token_time = 0.0
Played.kubeconfig = ""


def _rfc3339(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t or time.time()))


def _ca_path():
    from . import pki
    return pki.path("ca")


def _expand(value, env):
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1), m.group(0)), value)


def _clean_env(env):
    """The controller's environment: the container's, plus PATH; never the lab's own variables."""
    out = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL")}
    out.update(env)
    return out


class Host:
    def __init__(self):
        self.kube = Kube()
        self.played = {}
        self.services = []
        self.svc_lock = threading.Lock()
        self.svc_time = 0.0
        self.lock = threading.Lock()
        self.jobs_done = {}

    # -- egress routing ----------------------------------------------------------------------
    def _load_services(self):
        with self.svc_lock:
            self.services = self.kube.items("/api/v1/services")
            self.svc_time = time.time()

    def resolve(self, host, port):
        for attempt in (0, 1):
            svc = None
            for s in self.services:
                spec = s.get("spec") or {}
                name = "%s.%s.svc" % (s["metadata"]["name"], s["metadata"]["namespace"])
                if host in (spec.get("clusterIP"), name, name + ".cluster.local"):
                    svc = s
                    break
            if svc is not None:
                return self._route(svc, port)
            if attempt == 0 and time.time() - self.svc_time > 0.2:
                self._load_services()
        return None

    def _route(self, svc, port):
        spec = svc["spec"]
        entry = next((p for p in spec.get("ports") or [] if p.get("port") == port), None)
        if entry is None:
            return None
        target = entry.get("targetPort", port)
        with self.lock:
            played = list(self.played.values())
        for p in played:
            if p.ns != svc["metadata"]["namespace"] or not p.pod or not procs.alive(p.proc):
                continue
            if not _matches(spec.get("selector") or {}, p.pod["metadata"].get("labels") or {}):
                continue
            cport = target
            if isinstance(target, str):
                cport = next((cp["containerPort"] for cp in p.container.get("ports") or []
                              if cp.get("name") == target), None)
                if cport is None:
                    continue
            return lambda p=p, cport=cport: p.connect(cport)
        return None

    # -- reconcile ---------------------------------------------------------------------------
    def desired(self):
        out = {}
        for d in self.kube.items("/apis/apps/v1/deployments"):
            for c in d["spec"]["template"]["spec"].get("containers") or []:
                spec = controllers.match(c.get("image", ""), c["name"], d)
                if spec is not None:
                    out["%s/%s/%s" % (d["metadata"]["namespace"], d["metadata"]["name"], c["name"])] = (spec, d, c["name"])
        return out

    def played_containers(self, pod):
        """Names of the containers of pod that a real binary plays."""
        with self.lock:
            return [p.container_name for p in self.played.values() if p.pod_uid == pod["metadata"]["uid"]]

    def pod_for(self, played, deploy):
        sel = (deploy["spec"].get("selector") or {}).get("matchLabels") or {}
        q = urllib.parse.urlencode({"labelSelector": ",".join("%s=%s" % kv for kv in sorted(sel.items()))})
        pods = [p for p in self.kube.items("/api/v1/namespaces/%s/pods?%s" % (played.ns, q))
                if (p.get("status") or {}).get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")]
        pods.sort(key=lambda p: p["metadata"]["creationTimestamp"])
        return pods[-1] if pods else None

    def watch_jobs(self, stop):
        """Jobs are watched, not polled: Helm hook Jobs can complete and be deleted within a second."""
        while not stop.is_set():
            try:
                lst = self.kube.get("/apis/batch/v1/jobs")
                for job in lst.get("items") or []:
                    self.play_job(job)
                rv = lst["metadata"]["resourceVersion"]
                req = urllib.request.Request(self.kube.base + "/apis/batch/v1/jobs?watch=1&resourceVersion=%s" % rv)
                with urllib.request.urlopen(req, context=self.kube.ctx, timeout=300) as resp:
                    for line in resp:
                        if stop.is_set():
                            return
                        ev = json.loads(line)
                        if ev.get("type") in ("ADDED", "MODIFIED"):
                            self.play_job(ev["object"])
            except Exception as exc:  # expired resourceVersion, API restart, timeout: list again
                if not stop.is_set():
                    log("job watch: %s: %s" % (type(exc).__name__, str(exc)[:200]))
                    stop.wait(1)

    def play_job(self, job):
        """One-shot Job containers the lab plays with its own code (controllers.JOB_PLAYS), once per Job."""
        status = job.get("status") or {}
        for c in job["spec"]["template"]["spec"].get("containers") or []:
            fn = controllers.job_play(c)
            key = job["metadata"]["uid"]
            if fn is None or key in self.jobs_done:
                continue
            try:
                result = fn(self.kube, job, c)
            except Exception as exc:  # reported and retried on the next pass
                log("job %s/%s: %s: %s" % (job["metadata"]["namespace"], job["metadata"]["name"],
                                           type(exc).__name__, exc))
                continue
            with self.lock:
                self.jobs_done[key] = {"job": "%s/%s" % (job["metadata"]["namespace"], job["metadata"]["name"]),
                                       "result": result, "succeeded": status.get("succeeded")}
            log("job %s: %s" % (self.jobs_done[key]["job"], result))

    def step(self):
        self._load_services()
        want = self.desired()
        with self.lock:
            for key in list(self.played):
                if key not in want:
                    self.played.pop(key).stop()
                    shutil.rmtree(os.path.join(PODS_DIR, key.replace("/", "_")), ignore_errors=True)
            for key, (spec, deploy, cname) in want.items():
                if key not in self.played:
                    self.played[key] = Played(self, spec, deploy, cname)
            played = list(self.played.items())
        for key, p in played:
            try:
                p.reconcile(self.pod_for(p, want[key][1]))
                p.sync_status()
            except Exception as exc:  # one pod's trouble never stops the others
                p.status, p.reason = "error", "%s: %s" % (type(exc).__name__, exc)
        self.save()

    def save(self):
        with self.lock:
            doc = {"updated": time.time(), "pods": {k: p.state() for k, p in self.played.items()},
                   "jobs": sorted(self.jobs_done.values(), key=lambda j: j["job"])}
        _write(STATE_FILE, json.dumps(doc, indent=1, sort_keys=True))

    def shutdown(self):
        with self.lock:
            for p in self.played.values():
                p.stop()


def safety_check(kube, lab_id):
    if not settings.api_url().startswith("https://127.0.0.1:"):
        raise SystemExit("pod-host: refusing: the API server is not the lab's own on 127.0.0.1")
    ns = kube.get("/api/v1/namespaces/%s" % settings.MARKER_NAMESPACE)
    found = ((ns or {}).get("metadata", {}).get("annotations") or {}).get(settings.MARKER_ANNOTATION)
    if found != lab_id:
        raise SystemExit("pod-host: refusing: lab marker %s=%s, expected %s"
                         % (settings.MARKER_ANNOTATION, found, lab_id))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lab-id", required=True)
    args = ap.parse_args(argv)
    host = Host()
    safety_check(host.kube, args.lab_id)
    os.makedirs(PODS_DIR, exist_ok=True)
    proxy = egress.EgressProxy(SOCKET, host.resolve, log=log)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    stop = threading.Event()
    threading.Thread(target=host.watch_jobs, args=(stop,), daemon=True).start()
    log("egress proxy on %s; playing %s" % (SOCKET, ", ".join(sorted(controllers.names()))))
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.is_set():
            try:
                host.step()
            except Exception as exc:  # the API server restarting, etc.: try again
                log("reconcile failed: %s: %s" % (type(exc).__name__, exc))
            stop.wait(INTERVAL)
    finally:
        host.shutdown()
        proxy.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
