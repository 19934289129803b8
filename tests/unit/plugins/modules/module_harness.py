"""community.general-style helpers for module tests: set_module_args and exit/fail exceptions.

ansible-core 2.18 has no ansible.module_utils.testing, so this provides the same context manager.
"""
import contextlib
import json
from unittest.mock import patch

from ansible.module_utils import basic
from ansible.module_utils.common import warnings as ansible_warnings
from ansible.module_utils.common.text.converters import to_bytes


class AnsibleExitJson(Exception):
    """Raised instead of exit_json; .result holds the module result."""

    def __init__(self, result):
        super().__init__(result)
        self.result = result


class AnsibleFailJson(Exception):
    """Raised instead of fail_json; .result holds the module result."""

    def __init__(self, result):
        super().__init__(result)
        self.result = result


@contextlib.contextmanager
def set_module_args(args):
    """Give the module ``args`` as if Ansible had sent them."""
    args = dict(args)
    args.setdefault("_ansible_remote_tmp", "/tmp")
    args.setdefault("_ansible_keep_remote_files", False)
    serialized = to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    with patch.object(basic, "_ANSIBLE_ARGS", serialized):
        yield


def _exit_json(self, **kwargs):
    kwargs.setdefault("changed", False)
    warned = list(ansible_warnings.get_warning_messages())
    if warned:
        kwargs["warnings"] = warned
    raise AnsibleExitJson(kwargs)


def _fail_json(self, msg, **kwargs):
    kwargs["failed"] = True
    kwargs["msg"] = msg
    raise AnsibleFailJson(kwargs)


@contextlib.contextmanager
def module_harness():
    """Patch exit_json/fail_json to raise, and start with no collected warnings."""
    del ansible_warnings._global_warnings[:]
    with patch.multiple(basic.AnsibleModule, exit_json=_exit_json, fail_json=_fail_json):
        yield
