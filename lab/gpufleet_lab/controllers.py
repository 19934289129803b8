"""The real controllers the lab runs for the charts' controller pods (played by pod_host).

Each entry names the container image the real chart renders (its last path component, so an
air-gap registry prefix does not matter), the binary lab/build.sh builds from pinned source, and
what differs between a container and a process on the lab machine. Each played pod has a network
namespace of its own (netns.py), so the chart's ports and listen addresses stay as rendered; what
an entry adapts is the kubeconfig flag where a binary has one and absolute paths inside the pod
that are not volume mounts (paths under a volume mount are mapped by pod_host). Everything else —
the chart's args, config files, ServiceAccount, leader election — is left as the chart renders it.
"""
import base64
import os


from . import settings


class Spec:
    def __init__(self, name, images, binary, argv, env=None, containers=None, mounts=None):
        self.name = name
        self._mounts = mounts
        self.images = images
        self.binary = binary
        self._argv = argv
        self._env = env
        self.containers = containers

    def argv(self, pod, args):
        return self._argv(pod, list(args))

    def env(self, pod):
        return self._env(pod) if self._env else {}

    def mounts(self, pod):
        """Extra read-only (host path, pod path) mounts: what the upstream image ships beside the binary."""
        return self._mounts(pod) if self._mounts else []


def controller_bin():
    """Where lab/build.sh puts the controller binaries (ctrl_bin there)."""
    return settings.CONTROLLER_BIN


def binary(name):
    return os.path.join(controller_bin(), name)


# -- flag helpers ------------------------------------------------------------------------------
def set_flag(args, flag, value):
    """Replace --flag=… / --flag … in args (or append it)."""
    out, i, done = [], 0, False
    while i < len(args):
        a = args[i]
        if a == flag or a.startswith(flag + "="):
            if not done:
                out.append("%s=%s" % (flag, value))
                done = True
            if a == flag and i + 1 < len(args) and not args[i + 1].startswith("-"):
                i += 1
        else:
            out.append(a)
        i += 1
    if not done:
        out.append("%s=%s" % (flag, value))
    return out








# -- Kueue, Volcano, cert-manager, KServe, Slinky -----------------------------------------------
def as_rendered(pod, args):
    """The chart's args unchanged: the process finds its config, certificates and ServiceAccount at the
    pod paths, and the API server through in-cluster config, as in the pod."""
    return args


def command_tail(pod, args):
    """The chart's ``command`` after the program name, then its ``args``: for a chart that renders the whole
    command line in ``command`` (local-path-provisioner: ``local-path-provisioner start --config ...``)."""
    command = pod.container.get("command") or []
    return list(command[1:]) + list(args)


def volcano_admission_secret(kube, pod, container):
    """Plays the chart's ``<release>-admission-init`` Job (gen-admission-secret.sh in the upstream image).

    That shell script is part of the webhook-manager image, not of the pinned Go source, so the lab
    does what it does: a self-signed CA and a serving certificate for the admission Service, stored
    as Secret ``--secret`` (tls.key, tls.crt, ca.crt) unless it already exists.
    """
    cmd = (container.get("command") or []) + (container.get("args") or [])
    opts = {cmd[i]: cmd[i + 1] for i in range(len(cmd) - 1) if cmd[i].startswith("--")}
    ns, svc, name = opts.get("--namespace"), opts.get("--service"), opts.get("--secret")
    if not (ns and svc and name):
        return "gen-admission-secret.sh without --service/--namespace/--secret"
    if kube.get("/api/v1/namespaces/%s/secrets/%s" % (ns, name)) is not None:
        return "secret %s/%s exists" % (ns, name)
    from . import pki
    files = pki.serving_bundle("%s.%s.svc" % (svc, ns),
                               [svc, "%s.%s" % (svc, ns), "%s.%s.svc" % (svc, ns), "%s.%s.svc.cluster.local" % (svc, ns)])
    kube.request("POST", "/api/v1/namespaces/%s/secrets" % ns, {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": ns},
        "data": {k: base64.b64encode(v).decode() for k, v in files.items()}})
    return "created secret %s/%s" % (ns, name)


# -- NVIDIA GPU Operator -----------------------------------------------------------------------
GPU_OPERATOR_OPT = "/opt/gpu-operator"  # fixed in the operator (controllers/state_manager.go, internal/state)


def gpu_operator_home():
    """The state manifests lab/build.sh lays out as the operator image does (assets/* + manifests/)."""
    return os.path.join(settings.CACHE, "controllers", "gpu-operator-v" + settings.VERSIONS["GPU_OPERATOR_VERSION"])


def _gpu_operator_mounts(pod):
    """The state manifests at /opt/gpu-operator inside the pod, where the operator image has them (the operator
    reads those fixed paths: no flag or env variable moves them)."""
    from . import procs
    home = gpu_operator_home()
    for sub in ("state-driver", os.path.join("manifests", "state-driver")):
        if not os.path.isdir(os.path.join(home, sub)):
            raise procs.LabError("GPU Operator state manifests missing: %s (run `bash lab/build.sh gpu-operator`)"
                                 % os.path.join(home, sub))
    return [(home, GPU_OPERATOR_OPT)]


REGISTRY = [
    Spec("kueue", ["kueue"], "kueue", as_rendered),
    Spec("cert-manager-controller", ["cert-manager-controller"], "cert-manager-controller", as_rendered),
    Spec("cert-manager-webhook", ["cert-manager-webhook"], "cert-manager-webhook", as_rendered),
    Spec("cert-manager-cainjector", ["cert-manager-cainjector"], "cert-manager-cainjector", as_rendered),
    Spec("kserve-manager", ["kserve-controller"], "kserve-manager", as_rendered),
    Spec("kserve-llmisvc", ["llmisvc-controller"], "kserve-llmisvc", as_rendered),
    Spec("slurm-operator", ["slurm-operator"], "slurm-operator", as_rendered),
    Spec("slurm-operator-webhook", ["slurm-operator-webhook"], "slurm-operator-webhook", as_rendered),
    # The chart's args as rendered (--leader-elect: the lease 53822513.nvidia.com in the pod's namespace, which
    # controller-runtime reads from the ServiceAccount mount); the image's /opt/gpu-operator mounted read-only.
    Spec("gpu-operator", ["gpu-operator"], "gpu-operator", as_rendered, containers=["gpu-operator"],
         mounts=_gpu_operator_mounts),
    # The chart renders the whole command line in `command`; its helper pods (busybox, the setup/teardown scripts
    # of the chart's ConfigMap) are KWOK's: stage pod-helper-complete in lab/kwok/kwok.yaml makes them Succeed.
    Spec("local-path-provisioner", ["local-path-provisioner"], "local-path-provisioner", command_tail),
    # Kubeflow Trainer and its JobSet subchart: `/manager --config=...` as rendered (the config file is a subPath
    # ConfigMap mount); both manage their webhook certificates themselves (internal cert management, as Kueue).
    Spec("trainer-controller-manager", ["trainer-controller-manager"], "trainer-controller-manager", as_rendered),
    Spec("jobset", ["jobset"], "jobset", as_rendered),
    Spec("volcano-scheduler", ["vc-scheduler"], "vc-scheduler", as_rendered),
    Spec("volcano-controller-manager", ["vc-controller-manager"], "vc-controller-manager", as_rendered),
    Spec("volcano-webhook-manager", ["vc-webhook-manager"], "vc-webhook-manager", as_rendered),
]

# One-shot Job containers the lab plays with its own code, because the upstream program is a script
# inside an image rather than part of the pinned source: (image name, command basename) -> function.
JOB_PLAYS = {
    ("vc-webhook-manager", "gen-admission-secret.sh"): volcano_admission_secret,
}


def job_play(container):
    image = container.get("image", "").split("@", 1)[0].rsplit("/", 1)[-1].split(":", 1)[0]
    cmd = (container.get("command") or [""])[0]
    return JOB_PLAYS.get((image, os.path.basename(cmd)))


# The controllers each real chart renders (lab-up refuses to start without them: the chart's pods would
# never become Ready).
CHART_BINARIES = {
    "kueue": ["kueue"],
    "local-path-provisioner": ["local-path-provisioner"],
    "kubeflow-trainer": ["trainer-controller-manager", "jobset"],
    "volcano": ["vc-scheduler", "vc-controller-manager", "vc-webhook-manager"],
    "cert-manager": ["cert-manager-controller", "cert-manager-webhook", "cert-manager-cainjector"],
    "kserve-resources": ["kserve-manager"],
    "kserve-llmisvc-resources": ["kserve-llmisvc"],
    "slurm-operator": ["slurm-operator", "slurm-operator-webhook"],
    "gpu-operator": ["gpu-operator"],
}


def check_binaries(real_charts, timeout=20):
    """Every controller a real chart needs is built and starts (``--help`` exits by itself, not by a signal)."""
    import subprocess
    from . import procs
    missing, broken = [], []
    for chart in sorted(real_charts):
        for name in CHART_BINARIES.get(chart, []):
            path = binary(name)
            if not os.access(path, os.X_OK):
                missing.append("%s (chart %s)" % (name, chart))
                continue
            try:
                res = subprocess.run([path, "--help"], capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL,
                                     check=False)
            except (OSError, subprocess.TimeoutExpired) as exc:
                broken.append("%s: %s" % (name, exc))
                continue
            if res.returncode < 0 or not (res.stdout or res.stderr):
                broken.append("%s: `%s --help` exited with status %d and printed nothing"
                              % (name, path, res.returncode))
    if missing:
        raise procs.LabError("missing controller binaries in %s: %s. Run `make lab-build` first."
                             % (controller_bin(), ", ".join(missing)))
    if broken:
        raise procs.LabError("controller binaries that do not start: %s. Rebuild with `make lab-build` "
                             "(LAB_CLEAN_ALL=1 make lab-clean first)" % "; ".join(broken))


def names():
    return [s.name for s in REGISTRY]


def match(image, container_name, deploy):
    repo = image.split("@", 1)[0]
    last = repo.rsplit("/", 1)[-1].split(":", 1)[0]
    for spec in REGISTRY:
        if last in spec.images and (spec.containers is None or container_name in spec.containers):
            if os.access(binary(spec.binary), os.X_OK):
                return spec
    return None
