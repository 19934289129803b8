"""The Galaxy artifact: `ansible-galaxy collection build` of this checkout (galaxy.yml build_ignore) ships what a
Galaxy user runs and reads, and none of the lab, test, CI or development files."""
import json
import os
import shutil
import subprocess
import sys
import tarfile

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Top-level entries a Galaxy user gets (MANIFEST.json and FILES.json are written by the build; CHANGELOG.rst by
# `antsibull-changelog release`).
ALLOWED_TOP = {"roles", "plugins", "playbooks", "meta", "docs", "inventories", "changelogs", "schemas", "examples",
               "config.example.yml", "README.md", "LICENSE", "CHANGELOG.rst", "requirements.yml", "MANIFEST.json",
               "FILES.json"}
# Lab-only, test, CI and development paths (prefixes of a member's path).
FORBIDDEN = ("lab/", "docs/lab.md", "inventories/lab/", "tests/", "molecule/", "extensions/", "bench/", ".ci/",
             "tools/", ".venv/", ".build/", ".cache/", "ansible.cfg", "Makefile", "requirements.txt", "ruff.toml",
             ".ansible-lint", ".yamllint", ".gitignore")
REQUIRED = ("README.md", "LICENSE", "meta/runtime.yml", "config.example.yml", "schemas/config.schema.json",
            "changelogs/changelog.yaml", "changelogs/config.yaml", "docs/config.md", "docs/versions.md",
            "requirements.yml", "inventories/example/config.yml", "playbooks/site.yml", "playbooks/validate.yml",
            "plugins/modules/gpu_facts.py", "plugins/modules/mig_layout.py", "plugins/inventory/config.py")


def _galaxy():
    exe = os.path.join(os.path.dirname(sys.executable), "ansible-galaxy")
    return exe if os.access(exe, os.X_OK) else shutil.which("ansible-galaxy")


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    """(galaxy.yml, member names) of the artifact built from this checkout into a temporary directory."""
    exe = _galaxy()
    if not exe:
        pytest.skip("ansible-galaxy not found (make venv installs it)")
    out = tmp_path_factory.mktemp("galaxy")
    run = subprocess.run([exe, "collection", "build", ROOT, "--output-path", str(out)],
                         capture_output=True, text=True, check=False, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    with open(os.path.join(ROOT, "galaxy.yml")) as fh:
        galaxy = yaml.safe_load(fh)
    path = out / ("%s-%s-%s.tar.gz" % (galaxy["namespace"], galaxy["name"], galaxy["version"]))
    assert path.is_file(), os.listdir(str(out))
    with tarfile.open(str(path)) as tar:
        files = {m.name for m in tar.getmembers() if m.isfile()}
        manifest = json.load(tar.extractfile("MANIFEST.json"))
    return galaxy, files, manifest


def _tree(top):
    """Files under ROOT/top as the collection holds them (tracked or not), without Python caches."""
    found = set()
    for base, dirs, names in os.walk(os.path.join(ROOT, top)):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in names:
            if not name.endswith(".pyc"):
                found.add(os.path.relpath(os.path.join(base, name), ROOT))
    return found


def test_no_lab_test_or_development_file(artifact):
    _galaxy_yml, files, _manifest = artifact
    bad = sorted(f for f in files if f.startswith(FORBIDDEN) or "__pycache__" in f or f.endswith(".pyc"))
    assert not bad, "the artifact ships lab/test/dev files: %s" % bad
    assert {f.split("/")[0] for f in files} <= ALLOWED_TOP


def test_what_a_galaxy_user_needs_is_there(artifact):
    _galaxy_yml, files, _manifest = artifact
    missing = [f for f in REQUIRED if f not in files]
    assert not missing, missing
    for top in ("roles", "plugins", "playbooks"):
        absent = sorted(_tree(top) - files)
        assert not absent, "%s files left out of the artifact: %s" % (top, absent)
    roles = {f.split("/")[1] for f in files if f.startswith("roles/")}
    assert {"gpu_operator", "monitoring", "kueue", "helm_release"} <= roles
    for role in roles:
        assert "roles/%s/meta/argument_specs.yml" % role in files, role


def test_docs_but_not_the_lab(artifact):
    _galaxy_yml, files, _manifest = artifact
    assert sorted(_tree("docs") - files) == ["docs/lab.md"]


def test_manifest_metadata(artifact):
    galaxy, _files, manifest = artifact
    info = manifest["collection_info"]
    assert (info["namespace"], info["name"], info["version"]) == ("gpufleet", "platform", galaxy["version"])
    # no invented addresses: the project has no public home yet
    for key in ("repository", "documentation", "homepage", "issues"):
        assert not info.get(key) or ".invalid" not in info[key], key


def test_requires_ansible_is_what_ci_runs():
    from ansible.release import __version__ as core
    with open(os.path.join(ROOT, "meta", "runtime.yml")) as fh:
        spec = yaml.safe_load(fh)["requires_ansible"]
    assert spec == ">=2.18.0"
    major_minor = tuple(int(p) for p in core.split(".")[:2])
    assert major_minor >= (2, 18), "CI's ansible-core %s is below requires_ansible %s" % (core, spec)
