"""Where the nvidia-smi fixtures live, and how to parametrize over every file present.

Two sources:

* fixtures built in this repository from documented schema: tests/unit/fixtures/nvidia_smi/<kind>/;
* real captures kept outside the repository (never copied in): $GPUFLEET_SHARED/fixtures/nvidia-smi/<kind>/,
  with GPUFLEET_SHARED defaulting to <repo>/../shared.
"""
import glob
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
LOCAL = os.path.join(REPO, "tests", "unit", "fixtures", "nvidia_smi")
SHARED = os.environ.get("GPUFLEET_SHARED", os.path.join(os.path.dirname(REPO), "shared"))
SHARED_SMI = os.path.join(SHARED, "fixtures", "nvidia-smi")


def local_files(kind, pattern="*"):
    return sorted(glob.glob(os.path.join(LOCAL, kind, pattern)))


def local_params(kind, pattern="*"):
    return [pytest.param(p, id=os.path.basename(p)) for p in local_files(kind, pattern)]


def shared_params(kind):
    """One param per real capture in shared/fixtures/nvidia-smi/<kind>/, or one skipped param saying why."""
    folder = os.path.join(SHARED_SMI, kind)
    files = sorted(p for p in glob.glob(os.path.join(folder, "*")) if os.path.isfile(p))
    if not files:
        reason = (
            "real nvidia-smi captures not found in %s: they live outside the repository (../shared or "
            "$GPUFLEET_SHARED) and are never copied into it" % folder
        )
        return [pytest.param(None, id="shared-%s-absent" % kind, marks=pytest.mark.skip(reason=reason))]
    return [pytest.param(p, id=os.path.basename(p)) for p in files]


def read(path):
    with open(path, encoding="utf-8", newline="") as f:
        return f.read()


def read_error_fixture(path):
    """(meta dict, output text) of an errors/*.txt fixture: leading '# key: value' lines are metadata."""
    meta = {}
    body = []
    for line in read(path).splitlines():
        if line.startswith("#") and not body:
            if ":" in line:
                key, _sep, val = line[1:].partition(":")
                meta[key.strip()] = val.strip()
            continue
        body.append(line)
    return meta, "\n".join(body) + "\n"
