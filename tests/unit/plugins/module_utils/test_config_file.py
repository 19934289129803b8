"""The bounded config.yml loader (module_utils/config_file.py): every hostile class refused with its
exact message, within the time and memory bounds; ordinary YAML (anchors, merge keys, a BOM) loads
as yaml.safe_load reads it."""
import os
import subprocess
import sys
import time

import pytest
import yaml

from ansible_collections.gpufleet.platform.plugins.module_utils import config_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hostile_files  # noqa: E402  pylint: disable=wrong-import-position

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))


def _write(tmp_path, data, name="config.yml"):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize("name", sorted(hostile_files.CASES))
def test_hostile_file_refused_with_exact_message(tmp_path, name):
    path = _write(tmp_path, hostile_files.CASES[name][0])
    started = time.monotonic()
    with pytest.raises(config_file.ConfigFileError) as info:
        config_file.load(path)
    assert time.monotonic() - started < 5
    assert str(info.value) == hostile_files.message(name, path)


def test_missing_file_named(tmp_path):
    path = str(tmp_path / "nope.yml")
    with pytest.raises(config_file.ConfigFileError) as info:
        config_file.load(path)
    assert str(info.value) == ("config file %s not found; copy config.example.yml to config.yml, or pass "
                               "-e gpufleet_config_file=PATH" % path)


def test_directory_and_device_refused(tmp_path):
    for path in (str(tmp_path), "/dev/zero"):
        with pytest.raises(config_file.ConfigFileError) as info:
            config_file.load(path)
        assert str(info.value) == "%s is not a regular file; give the path of config.yml" % path


def test_messages_never_quote_the_file(tmp_path):
    """A YAML error on a line that holds a secret names the line and column, not the line's text."""
    path = _write(tmp_path, b"plugin: gpufleet.platform.config\nsecrets: {grafana_admin_password: 'Sup3r-S3cret\n")
    with pytest.raises(config_file.ConfigFileError) as info:
        config_file.load(path)
    assert "Sup3r" not in str(info.value)
    assert "line " in str(info.value)


@pytest.mark.parametrize("path", ["config.example.yml", "inventories/example/config.yml", "inventories/lab/config.yml"])
def test_shipped_configs_load_as_safe_load_reads_them(path):
    path = os.path.join(ROOT, path)
    with open(path) as handle:
        assert config_file.load(path) == yaml.safe_load(handle)


def test_anchors_merge_keys_and_bom_load(tmp_path):
    path = _write(tmp_path, b"\xef\xbb\xbfplugin: gpufleet.platform.config\n"
                            b"base: &base {a: 1, b: 2}\nover:\n  <<: *base\n  b: 3\nlist: [*base, *base]\n")
    assert config_file.load(path) == {"plugin": "gpufleet.platform.config", "base": {"a": 1, "b": 2},
                                      "over": {"a": 1, "b": 3}, "list": [{"a": 1, "b": 2}, {"a": 1, "b": 2}]}


def test_extra_scalar_tags(tmp_path):
    path = _write(tmp_path, b"plugin: gpufleet.platform.config\nx: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n")
    assert config_file.load(path, tags={"!vault": lambda text: ("vault", text)})["x"] == (
        "vault", "$ANSIBLE_VAULT;1.1;AES256\n")
    with pytest.raises(config_file.ConfigFileError) as info:
        config_file.load(path)
    assert "could not determine a constructor for the tag '!vault'" in str(info.value)


def test_limits_are_parameters(tmp_path):
    path = _write(tmp_path, b"a: [1, 2, 3]\n")
    with pytest.raises(config_file.ConfigFileError) as info:
        config_file.load(path, max_values=5)
    assert "holds more than 5 values" in str(info.value)  # the mapping, its key, the list, 3 items
    assert config_file.load(path, max_values=6) == {"a": [1, 2, 3]}


WORST = r"""
import resource, sys, time
sys.path.insert(0, sys.argv[1])
from ansible_collections.gpufleet.platform.plugins.module_utils import config_file
started = time.monotonic()
try:
    config_file.load(sys.argv[2])
except config_file.ConfigFileError:
    pass
else:
    raise SystemExit("loaded")
print(time.monotonic() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


@pytest.mark.parametrize("data", [
    hostile_files._bomb(levels=12, width=10),                                     # 10^12 values
    b"plugin: gpufleet.platform.config\nx: [" + b"0," * 524000 + b"0]\n",         # 1 MiB, one flat list
    b"plugin: gpufleet.platform.config\nx: " + b"[" * 500000 + b"]" * 500000,    # 1 MB of nesting
], ids=["billion-laughs", "wide-list", "deep-flow"])
def test_worst_cases_within_five_seconds_and_200_mb(tmp_path, data):
    path = _write(tmp_path, data)
    out = subprocess.run([sys.executable, "-c", WORST, os.path.join(ROOT, ".build", "collections"), path],
                         capture_output=True, text=True, check=True, timeout=60).stdout.split()
    seconds, max_rss_kib = float(out[0]), int(out[1])
    assert seconds < 5
    assert max_rss_kib < 200 * 1024
