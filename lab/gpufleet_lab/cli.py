"""lab.py up|down|status|summary|clean|gen-config|charts|kubeconfig."""
import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid

from . import charts, control_plane, controllers, kwok_config, nodes, pki, procs, settings, upstream

ORDER = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "gpu-simulator", "pod-host")
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok", "helm")


def log(msg):
    sys.stderr.write("[lab] %s\n" % msg)
    sys.stderr.flush()


def read_state():
    try:
        with open(settings.STATE) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return {}


def write_state(state):
    tmp = settings.STATE + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(state, fh, indent=2, sort_keys=True)
    os.replace(tmp, settings.STATE)


def core_api(user="admin"):
    from kubernetes import client, config
    cfg = client.Configuration()
    path = settings.KUBECONFIG if user == "admin" else os.path.join(control_plane.KUBECONFIGS, user + ".conf")
    config.load_kube_config(config_file=path, client_configuration=cfg)
    cfg.connection_pool_maxsize = 32
    # a loaded API server answers a list it cannot serve from its cache yet with 504 and Retry-After
    # (ResourceVersionTooLarge): GETs retry it the way client-go does
    cfg.client_go_retries = True
    return client.ApiClient(cfg)


def kubectl(*args, check=True, capture=False, timeout=300):
    cmd = [settings.binary("kubectl"), "--kubeconfig", settings.KUBECONFIG] + list(args)
    res = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout)
    if check and res.returncode != 0:
        raise procs.LabError("%s failed (%d): %s" % (" ".join(cmd[:1] + list(args)), res.returncode,
                                                     (res.stderr or res.stdout)[-2000:]))
    return res.stdout if capture else res


def all_running():
    return all(procs.alive(n) for n in ORDER)


def _config_digest(path):
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------
# up
# ---------------------------------------------------------------------------------------------

def install_crds(timeout=180, files=None):
    """Server-side apply the upstream CRDs the lab pre-installs (kubectl, one process per component, in parallel).

    files: the CRD files (default charts.preinstalled_crds(): every upstream CRD, less those a REAL chart ships as
    a template, which Helm must create itself: it refuses to adopt an existing object without its ownership
    metadata). CRDs of a chart's crds/ directory stay: Helm skips those when they exist.
    """
    files = charts.preinstalled_crds() if files is None else files
    groups = {}
    for path in files:
        groups.setdefault(os.path.dirname(path), []).append(path)
    running = []
    for d, paths in sorted(groups.items()):
        cmd = [settings.binary("kubectl"), "--kubeconfig", settings.KUBECONFIG, "apply", "--server-side",
               "--force-conflicts", "--field-manager=gpufleet-lab", "-o", "name"]
        for path in paths:
            cmd += ["-f", path]
        running.append((d, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
    names = []
    for d, proc in running:
        out, err = proc.communicate(timeout=timeout)
        if proc.returncode != 0:
            raise procs.LabError("installing CRDs from %s failed: %s" % (d, err[-2000:]))
        names.extend(line.strip() for line in out.splitlines() if line.strip())
    if names:
        kubectl("wait", "--for=condition=Established", "--timeout=%ds" % timeout, *names, timeout=timeout + 30)
    return names


def _golden_dir(files=None):
    """Cached etcd data of a fresh cluster with the pre-installed upstream CRDs Established (the warm path).

    The hash covers the selection (charts.preinstalled_crds(), which follows REAL_CHARTS: the files left out),
    so a chart turned real gets a snapshot without the CRDs it ships as templates.
    """
    files = charts.preinstalled_crds() if files is None else files
    h = hashlib.sha256()
    for path in (upstream.LOCK, pki.path("ca"), pki.path("sa", "pub")):
        with open(path, "rb") as fh:
            h.update(fh.read())
    h.update(("%s %s" % (settings.KUBE_VERSION, settings.ETCD_VERSION)).encode())
    skipped = sorted({p for p, _ in upstream.crd_files()} - set(files))
    if skipped:  # with nothing left out, the hash (and snapshot) of before REAL_CHARTS stays valid
        h.update(("skip " + " ".join(os.path.relpath(p, upstream.root()) for p in skipped)).encode())
    return os.path.join(settings.CACHE, "golden", h.hexdigest()[:16])


def crds_established(api_client, expected):
    from kubernetes import client
    items = client.ApiextensionsV1Api(api_client).list_custom_resource_definition().items
    names = {c.metadata.name for c in items
             if any(cond.type == "Established" and cond.status == "True" for cond in (c.status.conditions or ()))}
    return set(expected) <= names


def start_control_plane_with_crds():
    """etcd + kube-apiserver with the upstream CRDs installed (all but those a REAL chart ships as templates).

    The first run installs the CRDs (server-side apply, ~1 min on 2 cores: some are 2 MB) and keeps a
    copy of the stopped etcd data as a "golden" snapshot in the cache; later runs start from a copy of
    it, so a warm lab-up is a fresh cluster with every CRD already Established.
    """
    data = os.path.join(settings.RUN, "etcd-data")
    # Selected before anything starts: a REAL chart whose folder is missing stops lab-up here.
    files = charts.preinstalled_crds()
    golden = _golden_dir(files)
    meta = os.path.join(golden, "crds.json")
    if os.path.exists(meta):
        with open(meta) as fh:
            names = json.load(fh)
        shutil.copytree(os.path.join(golden, "etcd-data"), data)
        control_plane.start_etcd()
        control_plane.start_apiserver()
        api = core_api()
        deadline = time.time() + 60
        while not crds_established(api, names):
            if time.time() > deadline:
                raise procs.LabError("CRDs from the cached snapshot %s not Established; remove it and retry" % golden)
            time.sleep(0.3)
        return names
    control_plane.start_etcd()
    control_plane.start_apiserver()
    t = time.time()
    names = [n.split("/", 1)[-1] for n in install_crds(files=files)]
    log("installed %d upstream CRDs in %.0fs; caching the cluster state in %s" % (len(names), time.time() - t, golden))
    procs.stop("kube-apiserver")
    procs.stop("etcd")
    tmp = golden + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    shutil.copytree(data, os.path.join(tmp, "etcd-data"))
    with open(os.path.join(tmp, "crds.json"), "w") as fh:
        json.dump(sorted(names), fh)
    shutil.rmtree(golden, ignore_errors=True)
    os.replace(tmp, golden)
    control_plane.start_etcd()
    control_plane.start_apiserver()
    return names


def ensure_marker(api_client, lab_id):
    from kubernetes import client
    from kubernetes.client.rest import ApiException
    core = client.CoreV1Api(api_client)
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": settings.MARKER_NAMESPACE,
        "labels": {"lab.gpufleet.io/lab": "true"},
        "annotations": {settings.MARKER_ANNOTATION: lab_id,
                        "lab.gpufleet.io/description": "gpufleet lab cluster (simulated GPUs, test only)"}}}
    try:
        core.create_namespace(body)
    except ApiException as exc:
        if exc.status != 409:
            raise
        core.patch_namespace(settings.MARKER_NAMESPACE, body)


def wait_default_service_account(api_client, timeout=60):
    from kubernetes import client
    from kubernetes.client.rest import ApiException
    core = client.CoreV1Api(api_client)
    deadline = time.time() + timeout
    while True:
        try:
            core.read_namespaced_service_account("default", "default")
            return
        except ApiException as exc:
            if exc.status != 404 or time.time() > deadline:
                raise procs.LabError("default ServiceAccount not created by kube-controller-manager: %s" % exc)
        time.sleep(0.3)


def start_kwok():
    procs.start("kwok", [
        settings.binary("kwok"),
        "--kubeconfig=" + os.path.join(control_plane.KUBECONFIGS, "kwok.conf"),
        "--manage-all-nodes=false",
        "--manage-nodes-with-label-selector=%s=true" % settings.SIMULATED_LABEL,
        "--server-address=%s:%d" % (settings.HOST, settings.PORTS["kwok"]),
        "--node-ip=" + settings.HOST,
        "--config=" + kwok_config.write(),
    ])


def start_simulator(lab_id):
    procs.start_python("gpu-simulator", "gpufleet_lab.gpu_simulator", [
        "--kubeconfig", os.path.join(control_plane.KUBECONFIGS, "gpu-simulator.conf"),
        "--lab-id", lab_id,
    ])


def start_pod_host(lab_id):
    procs.start_python("pod-host", "gpufleet_lab.pod_host", ["--lab-id", lab_id])


def check_binaries():
    missing = [b for b in BINARIES if not os.access(settings.binary(b), os.X_OK)]
    if missing:
        raise procs.LabError("missing lab binaries in %s: %s. Run `make lab-build` first."
                             % (settings.BIN, ", ".join(missing)))
    controllers.check_binaries(charts.REAL_CHARTS)


def up(config_path, timeout=120, quiet=False):
    with procs.lab_lock():
        return _up(config_path, timeout, quiet)


def _up(config_path, timeout, quiet):
    t0 = time.time()
    config_path = os.path.abspath(os.path.expanduser(config_path))
    config = nodes.load_config(config_path)
    digest = _config_digest(config_path)
    state = read_state()
    if all_running() and state.get("lab_id"):
        ok, _ = control_plane.apiserver_ready()
        if ok:
            api = core_api()
            if state.get("config_digest") != digest:
                log("lab running; reconciling nodes with %s" % config_path)
                sync_nodes(api, config, state["lab_id"], timeout)
                state.update(config=config_path, config_digest=digest)
                write_state(state)
            else:
                log("lab already running (%s)" % settings.api_url())
            if kwok_config.stale():  # lab/kwok/kwok.yaml changed since KWOK started: restart it with its stages
                log("KWOK stages changed; restarting kwok")
                procs.stop("kwok")
                start_kwok()
            # Stand-in charts follow charts.py and upstream.lock (regenerated only when their digest changed),
            # so a running lab gets a chart added to the version matrix since it started.
            charts.generate()
            return state
        log("lab processes alive but API server not ready; restarting the lab")
    # Anything left from a previous (partial) run goes first.
    down(quiet=True)
    check_binaries()
    procs.check_ports(["etcd", "etcd-peer", "apiserver", "controller-manager", "scheduler", "kwok", "dcgm"])
    for d in (settings.RUN, settings.LOGS, settings.PIDS):
        os.makedirs(d, exist_ok=True)
    shutil.rmtree(os.path.join(settings.RUN, "etcd-data"), ignore_errors=True)
    for name in ORDER:  # fresh logs per run
        try:
            os.unlink(procs.logfile(name))
        except FileNotFoundError:
            pass
    lab_id = uuid.uuid4().hex[:12]
    state = {"lab_id": lab_id, "api": settings.api_url(), "kubeconfig": settings.KUBECONFIG, "config": config_path,
             "config_digest": digest, "ports": settings.PORTS, "started": time.time(), "bin": settings.BIN,
             "charts": os.path.join(settings.CHARTS, "charts.yml")}
    write_state(state)
    timings = {}
    try:
        pki.ensure()
        control_plane.write_kubeconfigs()
        crds = start_control_plane_with_crds()
        timings["crds_established"] = round(time.time() - t0, 1)
        control_plane.start_controller_manager()
        control_plane.start_scheduler()
        index = charts.generate()
        api = core_api()
        ensure_marker(api, lab_id)
        start_kwok()
        sync_nodes(api, config, lab_id, timeout)
        timings["nodes_ready"] = round(time.time() - t0, 1)
        control_plane.wait_components()
        start_simulator(lab_id)
        start_pod_host(lab_id)
        wait_default_service_account(api)
    except Exception:
        log("lab-up failed; stopping what was started (logs kept in %s)" % settings.LOGS)
        down(quiet=True)
        raise
    timings["total"] = round(time.time() - t0, 1)
    timings["apiserver_rss_mib"] = _rss_mib(procs.read_pid("kube-apiserver"))
    state.update(crds=len(crds), stand_in_charts=sorted(index["charts"]), timings=timings)
    write_state(state)
    if not quiet:
        log("lab up in %.1fs: %s (kubeconfig %s)" % (timings["total"], settings.api_url(), settings.KUBECONFIG))
    return state


def _rss_mib(pid):
    try:
        with open("/proc/%d/status" % pid) as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024.0, 1)
    except (OSError, TypeError):
        return None
    return None


def reset_nodes(names, config_path=None, timeout=60):
    """Recreate simulated nodes from the config (drops MIG/sharing state the tests or roles left on them)."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException
    state = read_state()
    config = nodes.load_config(config_path or state.get("config") or settings.DEFAULT_CONFIG)
    objs = [o for o in nodes.node_objects(config, state["lab_id"]) if o["metadata"]["name"] in set(names)]
    core = client.CoreV1Api(core_api())
    for o in objs:
        try:
            core.delete_node(o["metadata"]["name"], grace_period_seconds=0)
        except ApiException as exc:
            if exc.status != 404:
                raise
    deadline = time.time() + timeout
    for o in objs:
        while True:
            try:
                core.read_node(o["metadata"]["name"])
            except ApiException as exc:
                if exc.status == 404:
                    break
                raise
            if time.time() > deadline:
                raise procs.LabError("node %s not deleted" % o["metadata"]["name"])
            time.sleep(0.1)
    nodes.apply_nodes(core, objs)
    total_before = nodes.ready_count(core)[0]
    nodes.wait_ready(core, total_before, timeout)
    return [o["metadata"]["name"] for o in objs]


def sync_nodes(api_client, config, lab_id, timeout):
    from kubernetes import client
    core = client.CoreV1Api(api_client)
    objs = nodes.node_objects(config, lab_id)
    t = time.time()
    counts = nodes.apply_nodes(core, objs)
    stale = nodes.prune_nodes(core, [o["metadata"]["name"] for o in objs])
    log("nodes: %d created, %d updated, %d removed in %.1fs" % (counts["created"], counts["updated"], len(stale),
                                                              time.time() - t))
    nodes.wait_ready(core, len(objs), timeout)
    return len(objs)


# ---------------------------------------------------------------------------------------------
# down / status / clean
# ---------------------------------------------------------------------------------------------

def down(quiet=False):
    with procs.lab_lock():
        return _down(quiet)


def _down(quiet):
    stopped = []
    for name in reversed(ORDER):
        pid = procs.stop(name)
        if pid:
            stopped.append("%s(%d)" % (name, pid))
    # pid files of anything else we might have started
    for name in list(procs.running()):
        pid = procs.stop(name)
        if pid:
            stopped.append("%s(%d)" % (name, pid))
    # processes of this run dir that lost their pid file (run dir removed under a running lab)
    for pid, prog in procs.kill_orphans():
        stopped.append("%s(%d, orphan)" % (os.path.basename(prog), pid))
    shutil.rmtree(os.path.join(settings.RUN, "etcd-data"), ignore_errors=True)
    try:
        os.unlink(settings.STATE)
    except FileNotFoundError:
        pass
    if not quiet:
        log("stopped: %s" % (", ".join(stopped) or "nothing was running"))
    return stopped


def status(as_json=False):
    out = {"api": settings.api_url(), "kubeconfig": settings.KUBECONFIG, "processes": {}}
    for name in ORDER:
        out["processes"][name] = procs.read_pid(name)
    state = read_state()
    out["lab_id"] = state.get("lab_id")
    out["timings"] = state.get("timings")
    healthy = False
    if out["processes"]["kube-apiserver"]:
        try:
            healthy, _ = control_plane.apiserver_ready()
        except Exception:
            healthy = False
    out["apiserver_ready"] = healthy
    if healthy:
        from kubernetes import client
        api = core_api()
        core = client.CoreV1Api(api)
        total, ready = nodes.ready_count(core)
        gpu = {}
        cont = None
        while True:
            resp = core.list_node(label_selector="nvidia.com/gpu.present=true", limit=500, _continue=cont)
            for n in resp.items:
                for res, qty in (n.status.capacity or {}).items():
                    if res.startswith("nvidia.com/"):
                        gpu[res] = gpu.get(res, 0) + int(qty)
            cont = resp.metadata._continue
            if not cont:
                break
        out["nodes"] = {"simulated": total, "ready": ready}
        out["gpu_capacity"] = gpu
        out["crds"] = len(client.ApiextensionsV1Api(api).list_custom_resource_definition().items)
        pods = core.list_pod_for_all_namespaces(limit=2000).items
        phases = {}
        for p in pods:
            phases[p.status.phase] = phases.get(p.status.phase, 0) + 1
        out["pods"] = phases
    sim_state = os.path.join(settings.RUN, "gpu-simulator.json")
    try:
        with open(sim_state) as fh:
            out["gpu_simulator"] = json.load(fh)
    except (OSError, ValueError):
        out["gpu_simulator"] = None
    try:
        with open(os.path.join(settings.RUN, "pod-host.json")) as fh:
            out["controllers"] = json.load(fh).get("pods", {})
    except (OSError, ValueError):
        out["controllers"] = {}
    if as_json:
        print(json.dumps(out, indent=2, sort_keys=True))
    else:
        print("gpufleet lab  %s  (kubeconfig: %s)" % (out["api"], out["kubeconfig"]))
        for name, pid in out["processes"].items():
            print("  %-24s %s" % (name, "running, pid %d" % pid if pid else "not running"))
        print("  API server ready: %s" % ("yes" if healthy else "no"))
        if healthy:
            print("  simulated nodes: %(simulated)d (%(ready)d Ready)" % out["nodes"])
            print("  GPU capacity:    %s" % (", ".join("%s=%d" % kv for kv in sorted(out["gpu_capacity"].items()))
                                            or "none"))
            print("  CRDs:            %d" % out["crds"])
            print("  pods:            %s" % (", ".join("%s=%d" % kv for kv in sorted(out["pods"].items())) or "none"))
        if out["controllers"]:
            print("  controllers (real binaries playing the charts' pods):")
        for key, c in sorted(out["controllers"].items()):
            health = {True: "ready", False: "NOT ready", None: "no probe"}[c.get("ready")]
            print("    %-56s %-9s %-9s restarts=%d  %s" % (key, c["status"], health if c["status"] == "running" else "-",
                                                        c.get("restarts", 0), c.get("reason", "")[:120]))
        sim = out["gpu_simulator"]
        if sim:
            print("  GPU simulator:   %s, %d reconciles, last %s" % (sim.get("state"), sim.get("reconciles", 0),
                                                                     sim.get("last_event", "-")))
    return 0 if healthy and all(out["processes"].values()) else 3


def summary():
    """What `make lab` installed: Helm releases, nodes, GPU capacity."""
    rc = status()
    if rc != 0:
        return rc
    print("\nHelm releases:")
    res = subprocess.run([settings.binary("helm"), "--kubeconfig", settings.KUBECONFIG, "list", "-A"],
                         check=False, capture_output=True, text=True)
    print(res.stdout or res.stderr)
    print("Nodes:")
    print(kubectl("get", "nodes", "-L", "gpufleet.io/pool,nvidia.com/gpu.product,nvidia.com/mig.config.state",
                  capture=True))
    return 0


def clean(all_=False):
    with procs.lab_lock():
        _clean(all_)


def _clean(all_):
    down(quiet=True)
    shutil.rmtree(settings.RUN, ignore_errors=True)
    shutil.rmtree(settings.CHARTS, ignore_errors=True)
    shutil.rmtree(os.path.join(settings.CACHE, "golden"), ignore_errors=True)
    shutil.rmtree(os.path.join(settings.CACHE, "v" + settings.KUBE_VERSION, "src"), ignore_errors=True)
    if all_:
        shutil.rmtree(settings.BIN, ignore_errors=True)
    log("removed %s and %s%s" % (settings.RUN, settings.CHARTS, " and the built binaries" if all_ else ""))


def main(argv=None):
    p = argparse.ArgumentParser(prog="lab.py", description="gpufleet lab: Kubernetes on 127.0.0.1 with simulated GPU nodes")
    sub = p.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("up", help="start the lab (idempotent)")
    u.add_argument("--config", default=os.environ.get("LAB_CONFIG", settings.DEFAULT_CONFIG))
    u.add_argument("--timeout", type=int, default=180, help="seconds to wait for nodes to be Ready")
    sub.add_parser("down", help="stop every lab process and drop the cluster state")
    s = sub.add_parser("status", help="health, node counts, simulator state")
    s.add_argument("--json", action="store_true")
    sub.add_parser("summary", help="status plus Helm releases and nodes")
    c = sub.add_parser("clean", help="down, then remove run dir and stand-in charts")
    c.add_argument("--all", action="store_true", help="also remove the built binaries")
    g = sub.add_parser("gen-config", help="write a lab config with N GPU nodes (bench)")
    g.add_argument("gpu_nodes", type=int)
    g.add_argument("--out", required=True)
    g.add_argument("--base", default=settings.DEFAULT_CONFIG)
    sub.add_parser("charts", help="(re)generate the stand-in charts")
    args = p.parse_args(argv)
    try:
        if args.cmd == "up":
            up(args.config, timeout=args.timeout)
            return 0
        if args.cmd == "down":
            down()
            return 0
        if args.cmd == "status":
            return status(args.json)
        if args.cmd == "summary":
            return summary()
        if args.cmd == "clean":
            clean(args.all)
            return 0
        if args.cmd == "gen-config":
            print(nodes.generate_config(args.base, args.gpu_nodes, args.out))
            return 0
        if args.cmd == "charts":
            idx = charts.generate(force=True)
            print(os.path.join(settings.CHARTS, "charts.yml"))
            for name, c in idx["charts"].items():
                print("  %-24s %-10s %s" % (name, c["version"], c["package"]))
            return 0
    except procs.LabError as exc:
        log("ERROR: %s" % exc)
        return 2
    return 1
