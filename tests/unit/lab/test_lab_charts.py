"""The lab's chart mirror (lab/gpufleet_lab/charts.py) and CRD pre-install selection, without a lab.

Real charts: a chart named in charts.REAL_CHARTS is packaged from its real upstream folder
$GPUFLEET_SHARED/upstream/charts/<name>-<version>; the lab must then not pre-install the CRDs that chart ships
as templates (Helm refuses to adopt them), while crds/ directory CRDs stay pre-installed. Tests that read the
real charts are skipped when ../shared (or $GPUFLEET_SHARED) is absent; it is never copied into the repo.
"""
import gzip
import io
import os
import tarfile

import pytest
import yaml

from gpufleet_lab import charts, cli, pki, procs, settings, upstream

ALL = set(charts.STAND_INS)
needs_shared = pytest.mark.skipif(
    not os.path.isdir(charts.real_charts_root()),
    reason="real upstream charts not found in %s (../shared/upstream/charts or $GPUFLEET_SHARED); never copied "
           "into the repo" % charts.real_charts_root())


def _names(paths):
    by_path = dict(upstream.crd_files())
    return {n for p in paths for n in by_path[p]}


def _all_names():
    return {n for _, names in upstream.crd_files() for n in names}


# --- pure: packaging layout (a synthetic chart, no ../shared needed) ------------------------------------------

@pytest.fixture
def chart_dir(tmp_path):
    top = tmp_path / "src" / "demo"
    (top / "templates").mkdir(parents=True)
    (top / "crd" / "bases").mkdir(parents=True)
    (top / "tests").mkdir()
    (top / "docs").mkdir()
    (top / "charts" / "sub" / "tests").mkdir(parents=True)
    (top / "Chart.yaml").write_text("apiVersion: v2\nname: demo\nversion: 1.2.3\n")
    (top / "values.yaml").write_text("a: 1\n")
    (top / ".helmignore").write_text("# comment\n*.bak\ntests/\n/top-only.txt\n!docs/keep.md\ndocs/*.md\n")
    (top / "templates" / "cm.yaml").write_text("kind: ConfigMap\n")
    (top / "templates" / ".hidden").write_text("x")  # Helm's default rule templates/.?*
    (top / "templates" / "old.yaml.bak").write_text("x")
    (top / "crd" / "bases" / "x.example.com_things.yaml").write_text(
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: things.x.example.com\n"
        "spec:\n  group: x.example.com\n  names:\n    kind: Thing\n    plural: things\n  scope: Namespaced\n")
    os.symlink("bases", top / "crd" / "v1")  # like volcano's crd/v1 -> bases
    (top / "tests" / "t.yaml").write_text("x")
    (top / "top-only.txt").write_text("x")
    (top / "docs" / "drop.md").write_text("x")
    (top / "docs" / "keep.md").write_text("x")
    (top / "charts" / "sub" / "Chart.yaml").write_text("apiVersion: v2\nname: sub\nversion: 0.1.0\n")
    (top / "charts" / "sub" / "top-only.txt").write_text("x")  # /top-only.txt anchors at the chart root only
    (top / "charts" / "sub" / "tests" / "t.yaml").write_text("x")  # tests/ matches any directory named tests
    return top


def test_real_chart_files_follow_symlinks_and_helmignore(chart_dir):
    files = charts.real_chart_files(str(chart_dir))
    assert sorted(files) == [
        ".helmignore", "Chart.yaml", "charts/sub/Chart.yaml", "charts/sub/top-only.txt",
        "crd/bases/x.example.com_things.yaml", "crd/v1/x.example.com_things.yaml",  # the link's files, under its path
        "docs/keep.md", "templates/cm.yaml", "values.yaml"]  # .helmignore ships too, as in Helm
    assert files["crd/v1/x.example.com_things.yaml"] == files["crd/bases/x.example.com_things.yaml"]
    assert charts.chart_crds(files) == {"crds_dir": set(), "templates": {"things.x.example.com"}}


def test_tgz_layout_is_helm_package_like_and_reproducible(chart_dir, tmp_path):
    files = charts.real_chart_files(str(chart_dir))
    one, two = str(tmp_path / "one.tgz"), str(tmp_path / "two.tgz")
    charts._tgz("demo", files, one)
    os.utime(chart_dir / "values.yaml", (1, 1))  # file times never reach the package
    charts._tgz("demo", charts.real_chart_files(str(chart_dir)), two)
    with open(one, "rb") as a, open(two, "rb") as b:
        data = a.read()
        assert data == b.read()
    assert data[4:8] == b"\0\0\0\0"  # gzip header MTIME 0
    with gzip.GzipFile(fileobj=io.BytesIO(data)) as gz:
        assert gz.read(1)  # a gzip stream
    with tarfile.open(one) as tar:
        members = tar.getmembers()
    assert members[0].name == "demo/Chart.yaml"
    assert {m.name for m in members} == {"demo/" + rel for rel in files}
    assert all(m.isfile() and m.mode == 0o644 and m.mtime == 0 and m.uid == 0 and not m.uname for m in members)


def test_helmignore_rules_match_like_helm():
    rules = charts.HelmIgnore("*.swp\n.git/\nci/*\n/README.md\n[ab].txt\n!a.txt\n")
    assert rules.ignored("x/y.swp", False)
    assert rules.ignored("charts/sub/.git", True) and not rules.ignored(".git", False)  # dir-only rule
    assert rules.ignored("ci/values.yaml", False) and not rules.ignored("ci/deep/values.yaml", False)  # * stops at /
    assert rules.ignored("README.md", False) and not rules.ignored("charts/sub/README.md", False)
    assert rules.ignored("b.txt", False)
    assert rules.ignored("a.txt", False)  # first matching rule wins, as in Helm: [ab].txt precedes !a.txt
    assert rules.ignored("templates/.keep", False) and not rules.ignored("templates/keep", False)
    with pytest.raises(procs.LabError):
        charts.HelmIgnore("**/x\n")


def test_crd_names_reads_templates_without_rendering():
    text = ("{{- if .Values.crds.enabled }}\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
            "metadata:\n  name: {{ include \"x\" . }}\n  labels:\n  {{- include \"l\" . | nindent 4 }}\nspec:\n"
            "  group: a.example.com\n  names:\n    kind: B\n    plural: bs\n---\nkind: ConfigMap\n---\n"
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: cs.a.example.com\n"
            "spec:\n  group: a.example.com\n  names:\n    plural: cs\n{{- end }}\n")
    assert upstream.crd_names(text) == ["bs.a.example.com", "cs.a.example.com"]


def test_missing_real_chart_folder_is_a_lab_error(tmp_path, monkeypatch):
    monkeypatch.setattr(settings, "SHARED", str(tmp_path / "no-shared"))
    folder = str(tmp_path / "no-shared" / "upstream" / "charts" / "kueue-0.19.2")
    for call in (lambda: charts.generate(dest=str(tmp_path / "mirror"), real={"kueue"}),
                 lambda: charts.preinstalled_crds({"kueue"})):
        with pytest.raises(procs.LabError) as exc:
            call()
        assert folder in str(exc.value) and "../shared/upstream/charts" in str(exc.value)
        assert "GPUFLEET_SHARED" in str(exc.value)
    assert not os.path.exists(tmp_path / "mirror")  # nothing written
    with pytest.raises(procs.LabError, match="does not mirror: nope"):
        charts.preinstalled_crds({"nope"})


def test_real_charts_starts_empty_and_names_mirrored_charts():
    assert charts.REAL_CHARTS <= ALL


def test_stand_in_versions_match_the_version_matrix():
    pinned = charts._pinned_versions()
    assert {n: charts.STAND_INS[n]["version"] for n in pinned} == pinned
    assert ALL - set(pinned) == {"nvidia-device-plugin", "dcgm-exporter"}


# --- the real charts (../shared) -----------------------------------------------------------------------------

# CRDs each real chart ships as templates (Helm owns them: never pre-installed) and in crds/ (pre-installable).
TEMPLATE_CRD_GROUPS = {
    "cert-manager": {"cert-manager.io", "acme.cert-manager.io"},  # crds.enabled (the role sets it)
    "kueue": {"kueue.x-k8s.io"},
    "volcano": {"batch.volcano.sh", "bus.volcano.sh", "config.volcano.sh", "flow.volcano.sh", "nodeinfo.volcano.sh",
                "scheduling.volcano.sh", "shard.volcano.sh", "topology.volcano.sh"},  # crd/bases via .Files.Get
    "slurm-operator-crds": {"slinky.slurm.net"},
    "slurm-operator": {"slinky.slurm.net"},  # its vendored slurm-operator-crds subchart (crds.enabled)
    "kserve-crd": {"serving.kserve.io"},
    "kserve-llmisvc-crd": {"serving.kserve.io"},
}


@needs_shared
def test_every_mirrored_chart_has_its_real_folder():
    for name in ALL:
        meta = yaml.safe_load(open(os.path.join(charts.real_chart_dir(name), "Chart.yaml")))
        assert (meta["name"], str(meta["version"])) == (name, charts.STAND_INS[name]["version"])


@needs_shared
def test_nothing_real_pre_installs_every_upstream_crd():
    files = charts.preinstalled_crds(set())
    assert files == [p for p, _ in upstream.crd_files()] and len(files) >= 60
    assert not any(os.sep + "charts" + os.sep in os.path.relpath(p, upstream.root()) for p in files)


@needs_shared
@pytest.mark.parametrize("name", sorted(ALL))
def test_real_chart_crd_template_vs_crds_dir(name):
    crds = charts.real_chart_crds(name)
    lab = _all_names()
    template_groups = {n.split(".", 1)[1] for n in crds["templates"] & lab}
    assert template_groups == TEMPLATE_CRD_GROUPS.get(name, set())
    kept = _names(charts.preinstalled_crds({name}))
    assert not kept & crds["templates"]
    assert kept == lab - crds["templates"]
    assert crds["crds_dir"] & lab <= kept  # crds/ CRDs stay pre-installed (Helm skips existing ones)


@needs_shared
def test_pre_install_selection_per_real_set():
    lab = _all_names()
    kserve_crd = {"clusterservingruntimes", "clusterstoragecontainers", "inferencegraphs", "inferenceservices",
                  "servingruntimes", "trainedmodels"}
    llmisvc = {"clusterstoragecontainers", "llminferenceserviceconfigs", "llminferenceservices"}
    assert lab - _names(charts.preinstalled_crds({"kserve-crd"})) == {n + ".serving.kserve.io" for n in kserve_crd}
    assert lab - _names(charts.preinstalled_crds({"kserve-llmisvc-crd"})) == {n + ".serving.kserve.io" for n in llmisvc}
    # crds/ charts only: everything stays
    assert _names(charts.preinstalled_crds({"gpu-operator", "kube-prometheus-stack", "nvidia-device-plugin",
                                            "dcgm-exporter"})) == lab
    everything = _names(charts.preinstalled_crds(ALL))
    assert {n.split(".", 1)[1] for n in everything} == {
        "nvidia.com", "resource.nvidia.com", "monitoring.coreos.com", "serving.kserve.io"}
    assert {n for n in everything if n.endswith(".serving.kserve.io")} == {
        "localmodelcaches.serving.kserve.io", "localmodelnamespacecaches.serving.kserve.io",
        "localmodelnodegroups.serving.kserve.io", "localmodelnodes.serving.kserve.io"}  # in no pinned chart


@needs_shared
def test_golden_snapshot_hash_follows_the_selection(tmp_path, monkeypatch):
    key = tmp_path / "k"
    key.write_text("k")
    monkeypatch.setattr(pki, "path", lambda *a: str(key))
    monkeypatch.setattr(charts, "REAL_CHARTS", set())
    every = cli._golden_dir()
    assert cli._golden_dir(charts.preinstalled_crds(set())) == every
    assert cli._golden_dir(charts.preinstalled_crds({"gpu-operator"})) == every  # crds/ only: same snapshot
    kueue = cli._golden_dir(charts.preinstalled_crds({"kueue"}))
    assert kueue != every and kueue != cli._golden_dir(charts.preinstalled_crds({"kueue", "volcano"}))
    monkeypatch.setattr(charts, "REAL_CHARTS", {"kueue"})
    assert cli._golden_dir() == kueue


def test_package_real_needs_every_dependency(tmp_path, monkeypatch):
    """Helm refuses a chart whose Chart.yaml dependencies are not all under charts/: so does the packager."""
    shared = tmp_path / "shared"
    folder = shared / "upstream" / "charts" / "dcgm-exporter-4.8.2"
    folder.mkdir(parents=True)
    (folder / "Chart.yaml").write_text("apiVersion: v2\nname: dcgm-exporter\nversion: 4.8.2\ndependencies:\n"
                                       "- {name: present, version: 1.0.0}\n- {name: absent, version: 1.0.0}\n")
    (folder / "charts" / "present").mkdir(parents=True)
    (folder / "charts" / "present" / "Chart.yaml").write_text("apiVersion: v2\nname: present\nversion: 1.0.0\n")
    monkeypatch.setattr(settings, "SHARED", str(shared))
    with pytest.raises(procs.LabError, match="lacks the subcharts absent under charts/"):
        charts.package_real("dcgm-exporter", str(tmp_path / "mirror"))


@needs_shared
def test_package_real_volcano(tmp_path):
    tgz, files = charts.package_real("volcano", str(tmp_path))
    assert os.path.basename(tgz) == "volcano-1.15.1.tgz"
    with tarfile.open(tgz) as tar:
        names = tar.getnames()
    assert names[0] == "volcano/Chart.yaml" and all(n.startswith("volcano/") for n in names)
    assert "volcano/templates/scheduling_v1beta1_queue.yaml" in names
    assert "volcano/crd/bases/scheduling.volcano.sh_queues.yaml" in names
    assert "volcano/charts/jobflow/crd/bases/flow.volcano.sh_jobflows.yaml" in names
    link = os.path.join(charts.real_chart_dir("volcano"), "crd", "v1")
    if os.path.islink(link):  # upstream's crd/v1 -> bases, dereferenced as helm package does
        assert "volcano/crd/v1/scheduling.volcano.sh_queues.yaml" in names
    with open(tgz, "rb") as fh:
        first = fh.read()
    charts.package_real("volcano", str(tmp_path))
    with open(tgz, "rb") as fh:
        assert fh.read() == first


@needs_shared
def test_generate_mixes_real_and_stand_in_charts(tmp_path):
    dest = str(tmp_path / "mirror")
    real_set = {"dcgm-exporter", "kserve-llmisvc-crd"}
    index = charts.generate(dest=dest, real=real_set)
    assert set(index["charts"]) == ALL and index["stand_in"] is True
    real = index["charts"]["dcgm-exporter"]
    assert real["stand_in"] is False and real["source"] == charts.real_chart_dir("dcgm-exporter")
    assert real["package"] == os.path.join(dest, "dcgm-exporter-4.8.2.tgz") and real["path"] == os.path.join(dest, "dcgm-exporter")
    with open(os.path.join(real["path"], "Chart.yaml"), "rb") as a, \
            open(os.path.join(real["source"], "Chart.yaml"), "rb") as b:
        assert a.read() == b.read()
    assert index["charts"]["kserve-llmisvc-crd"]["crds"] == 3
    stand_in = index["charts"]["gpu-operator"]
    assert stand_in["stand_in"] is True and stand_in["source"] is None
    # kserve-crd stays a stand-in; the CRD it shares with the real kserve-llmisvc-crd becomes a guarded template
    # (Helm-owned, as the real kserve-crd has it), its other CRDs stay in crds/.
    kserve = os.path.join(dest, "kserve-crd")
    assert os.path.exists(os.path.join(kserve, "templates", "crd-serving.kserve.io_clusterstoragecontainers.yaml"))
    assert not os.path.exists(os.path.join(kserve, "crds", "serving.kserve.io_clusterstoragecontainers.yaml"))
    assert os.path.exists(os.path.join(kserve, "crds", "serving.kserve.io_inferenceservices.yaml"))
    assert index["charts"]["kserve-crd"]["crds"] == 12
    with open(os.path.join(dest, "charts.yml")) as fh:
        assert yaml.safe_load(fh) == index
    # unchanged inputs: the cached index, nothing rewritten; another REAL set: regenerated
    stamp = os.path.join(dest, ".stamp")
    before = (open(stamp).read(), os.stat(real["package"]).st_mtime_ns)
    assert charts.generate(dest=dest, real=real_set) == index
    assert (open(stamp).read(), os.stat(real["package"]).st_mtime_ns) == before
    again = charts.generate(dest=dest, real=real_set - {"dcgm-exporter"})
    assert open(stamp).read() != before[0] and again["charts"]["dcgm-exporter"]["stand_in"] is True
    # a chart another checkout packaged into the shared mirror stays listed while its package exists
    other = os.path.join(dest, "other-chart-1.0.0.tgz")
    with open(other, "wb") as fh:
        fh.write(b"x")
    index = yaml.safe_load(open(os.path.join(dest, "charts.yml")))
    index["charts"]["other-chart"] = {"version": "1.0.0", "path": os.path.join(dest, "other-chart"), "package": other,
                                      "stand_in": False, "source": None, "crds": 0}
    index["charts"]["gone-chart"] = {"version": "1.0.0", "package": os.path.join(dest, "gone-chart-1.0.0.tgz")}
    with open(os.path.join(dest, "charts.yml"), "w") as fh:
        yaml.safe_dump(index, fh)
    kept = charts.generate(dest=dest, real=real_set, force=True)["charts"]
    assert kept["other-chart"]["package"] == other and "gone-chart" not in kept


def test_lab_up_stops_before_starting_etcd_when_a_real_chart_is_missing(tmp_path, monkeypatch):
    """start_control_plane_with_crds (inside _up's try, whose except runs lab-down) selects the CRDs first."""
    started = []
    monkeypatch.setattr(settings, "SHARED", str(tmp_path / "no-shared"))
    monkeypatch.setattr(charts, "REAL_CHARTS", {"volcano"})
    monkeypatch.setattr(cli.control_plane, "start_etcd", lambda: started.append("etcd"))
    monkeypatch.setattr(cli.control_plane, "start_apiserver", lambda: started.append("kube-apiserver"))
    with pytest.raises(procs.LabError, match="volcano-1.15.1 is missing"):
        cli.start_control_plane_with_crds()
    assert not started


def test_lab_down_takes_only_its_own_run_dirs_orphans():
    """A second lab runs with GPUFLEET_LAB_RUN=.../run-b: `lab.py down` of the default lab (.../run) must not
    take its etcd (--data-dir .../run-b/etcd) for an orphan of its own."""
    run = b"/root/.cache/gpufleet/lab/run"
    assert procs.names_run_dir(b"--data-dir=/root/.cache/gpufleet/lab/run/etcd", run)
    assert procs.names_run_dir(b"/root/.cache/gpufleet/lab/run/kubeconfig", run)
    assert procs.names_run_dir(b"--root=/root/.cache/gpufleet/lab/run", run)
    assert not procs.names_run_dir(b"--data-dir=/root/.cache/gpufleet/lab/run-b/etcd", run)
    assert not procs.names_run_dir(b"/root/.cache/gpufleet/lab/run-b/kubeconfig", run)
