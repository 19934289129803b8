"""gpufleet lab: a real Kubernetes control plane on 127.0.0.1 with KWOK-simulated GPU nodes.

Test infrastructure only; not part of the collection. See docs/lab.md.
"""
