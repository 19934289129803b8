"""The doctor's check names: the role's list (vars/main.yml _preflight_checks, which preflight_skip_checks is
validated against), the checks its tasks emit, and docs/operations/preflight.md name the same checks."""
import os
import re

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ROLE = os.path.join(ROOT, "roles", "preflight")


def declared():
    with open(os.path.join(ROLE, "vars", "main.yml")) as handle:
        return set(yaml.safe_load(handle)["_preflight_checks"])


def emitted():
    names = set()
    for name in os.listdir(os.path.join(ROLE, "tasks")):
        with open(os.path.join(ROLE, "tasks", name)) as handle:
            names.update(re.findall(r"^\s+check: ([a-z_]+)\s*$", handle.read(), re.M))
    return names


def documented():
    """First-column names of the tables under "What is checked"."""
    with open(os.path.join(ROOT, "docs", "operations", "preflight.md")) as handle:
        text = handle.read()
    section = text.split("## What is checked", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([a-z_]+)`(?:, `([a-z_]+)`)? \|", section, re.M)
    return {name for row in rows for name in row if name}


def test_every_emitted_check_is_declared():
    # disk_<path> checks are named from preflight_min_disk_free_gib; the defaults give disk_root and disk_var
    assert emitted() - declared() == set()
    assert declared() - emitted() == {"disk_root", "disk_var"}


def test_every_check_is_documented():
    assert documented() == declared()
