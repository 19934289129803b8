#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: gpufleet.platform contributors
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later
# Apache License 2.0 (see LICENSE), or at your option GNU General Public License v3.0+
# (see https://www.gnu.org/licenses/gpl-3.0.txt), like every module file (see README, Licensing).

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: csr_approval
short_description: Approve a Kubernetes client-certificate CertificateSigningRequest and return the certificate
version_added: 1.1.0
description:
  - Approves a C(certificates.k8s.io/v1) CertificateSigningRequest through its C(approval) subresource (what
    C(kubectl certificate approve) does; M(kubernetes.core.k8s) cannot write subresources) and waits until the
    signer (kube-controller-manager) has issued the certificate.
  - Only requests for the C(kubernetes.io/kube-apiserver-client) signer are approved; a denied or failed request
    is an error.
  - The team_access role creates the request with M(kubernetes.core.k8s) and calls this module.
author:
  - gpufleet.platform maintainers (@gpufleet)
options:
  name:
    description: Name of the CertificateSigningRequest.
    type: str
    required: true
  kubeconfig:
    description: The kubeconfig to reach the API server with (the admin kubeconfig, C(cluster.kubeconfig)).
    type: path
    required: true
  context:
    description: The kubeconfig context (default the current context).
    type: str
  reason:
    description: The reason recorded on the Approved condition.
    type: str
    default: GpufleetTeamAccess
  approval_message:
    description: The message recorded on the Approved condition.
    type: str
    default: Approved by gpufleet.platform for a user of teams[].access
  wait_timeout:
    description: Seconds to wait for the signed certificate after approval (0 to not wait).
    type: int
    default: 60
requirements:
  - kubernetes (the Python client, as for kubernetes.core)
attributes:
  check_mode:
    support: full
    description: Reports whether the request would be approved; approves nothing.
  diff_mode:
    support: none
    description: The change is one condition, reported in RV(approved).
"""

EXAMPLES = r"""
- name: Approve a user's CertificateSigningRequest and read the certificate
  gpufleet.platform.csr_approval:
    name: gpufleet-lab-kubeconfig-0123456789ab
    kubeconfig: ~/.kube/gpufleet.conf
  register: approval
"""

RETURN = r"""
approved:
  description: Whether this run approved the request (false when it already was).
  returned: always
  type: bool
  sample: true
certificate:
  description: The signed certificate (base64 of the PEM, the request's C(status.certificate)); empty in check mode
    or when not issued within O(wait_timeout).
  returned: always
  type: str
  sample: LS0tLS1CRUdJTi...
"""

import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

try:
    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config
    HAS_KUBERNETES = True
except ImportError:
    HAS_KUBERNETES = False

from ansible_collections.gpufleet.platform.plugins.module_utils.access import CsrError, approval_body, approval_state


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            kubeconfig=dict(type="path", required=True),
            context=dict(type="str"),
            reason=dict(type="str", default="GpufleetTeamAccess"),
            approval_message=dict(type="str", default="Approved by gpufleet.platform for a user of teams[].access"),
            wait_timeout=dict(type="int", default=60),
        ),
        supports_check_mode=True,
    )
    if not HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"))
    params = module.params
    try:
        api_client = k8s_config.new_client_from_config(config_file=params["kubeconfig"], context=params["context"])
        api = k8s_client.CertificatesV1Api(api_client)
        csr = api_client.sanitize_for_serialization(api.read_certificate_signing_request(params["name"]))
        state = approval_state(csr)
        if state == "pending" and module.check_mode:
            module.exit_json(changed=True, approved=True, certificate="")
        approved = state == "pending"
        if approved:
            body = approval_body(csr, params["reason"], params["approval_message"])
            api.replace_certificate_signing_request_approval(params["name"], body)
        deadline = time.time() + params["wait_timeout"]
        certificate = (csr.get("status") or {}).get("certificate") or ""
        while not certificate and time.time() < deadline:
            time.sleep(1)
            csr = api_client.sanitize_for_serialization(api.read_certificate_signing_request(params["name"]))
            approval_state(csr)
            certificate = (csr.get("status") or {}).get("certificate") or ""
    except CsrError as exc:
        module.fail_json(msg=str(exc))
    except k8s_client.exceptions.ApiException as exc:
        module.fail_json(msg="CertificateSigningRequest %s: the API server answered %s %s: %s"
                         % (params["name"], exc.status, exc.reason, exc.body))
    except k8s_config.config_exception.ConfigException as exc:
        module.fail_json(msg="kubeconfig %s: %s" % (params["kubeconfig"], exc))
    if params["wait_timeout"] and not certificate:
        module.fail_json(msg="CertificateSigningRequest %s: approved but no certificate after %ds; is "
                         "kube-controller-manager running with --cluster-signing-cert-file?"
                         % (params["name"], params["wait_timeout"]), approved=approved)
    module.exit_json(changed=approved, approved=approved, certificate=certificate)


if __name__ == "__main__":
    main()
