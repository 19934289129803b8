# -*- coding: utf-8 -*-
# Copyright: gpufleet.platform contributors
# Apache License 2.0 (see LICENSE)
"""config.yml for the controller-side plugins: the bounded loader (module_utils/config_file.py) with
Ansible's own scalar tags, ``!vault`` (decrypted with the run's vault secrets) and ``!unsafe``."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.module_utils.common.text.converters import to_bytes
from ansible.parsing.yaml.objects import AnsibleVaultEncryptedUnicode
from ansible.utils.unsafe_proxy import wrap_var

from ansible_collections.gpufleet.platform.plugins.module_utils import config_file

ConfigFileError = config_file.ConfigFileError


def load(path, loader):
    """config.yml at ``path`` as a mapping; ``loader`` is the plugin's DataLoader (its vault secrets)."""
    def vault(text):
        value = AnsibleVaultEncryptedUnicode(to_bytes(text))
        value.vault = loader._vault  # pylint: disable=protected-access
        return value
    return config_file.load(path, tags={"!vault": vault, "!unsafe": wrap_var})
