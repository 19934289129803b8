"""helm_chart_crds: only the CRDs of a chart's crds/ directories are pre-applied by role helm_release.

Helm's `template --include-crds` prints "---" then "# Source: <chart>/crds/<file>" then the file, whose own "---"
separators follow; CRDs a chart ships under templates/ (kserve-crd v0.20.0, kueue) belong to the release.
The lab's stand-in charts keep CRDs in crds/ only, so the templates/ case is checked here; every lab role test runs
the filter on real `helm template` output of the stand-ins.
"""
import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.gpufleet.platform.plugins.filter.helm import helm_chart_crds

CRD = """---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: %s
spec:
  group: example.com
  versions:
  - name: v1
    schema:
      openAPIV3Schema:
        properties:
          match:
            enum:
            - =
            - "!="
"""

OUTPUT = (
    "---\n# Source: op/crds/a.yaml\n" + CRD % "as.example.com"
    + "---\n# Source: op/charts/sub/crds/b.yaml\n" + CRD % "bs.example.com" + CRD % "cs.example.com"
    + "---\n# Source: op/templates/crd.yaml\n" + CRD % "templated.example.com"
    + "---\n# Source: op/charts/crds/templates/d.yaml\n" + CRD % "subtemplated.example.com"
    + "---\n# Source: op/templates/deployment.yaml\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: op}\n"
)


def test_only_crds_directories():
    names = [c["metadata"]["name"] for c in helm_chart_crds(OUTPUT)]
    assert names == ["as.example.com", "bs.example.com", "cs.example.com"]


def test_bare_equals_enum_parses_as_string():
    crd = helm_chart_crds(OUTPUT)[0]
    enum = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["match"]["enum"]
    assert enum == ["=", "!="]


def test_empty_and_bad_input():
    assert helm_chart_crds("") == [] and helm_chart_crds(None) == []
    with pytest.raises(AnsibleFilterError, match="expects the text"):
        helm_chart_crds(["x"])
    with pytest.raises(AnsibleFilterError, match="cannot parse op/crds/bad.yaml"):
        helm_chart_crds("---\n# Source: op/crds/bad.yaml\nkind: [\n")
