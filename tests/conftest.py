"""Make the checkout importable as ``ansible_collections.gpufleet.platform`` for pytest.

The Makefile creates the same link; this keeps a bare ``pytest`` run working too.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, ".build", "collections")
LINK = os.path.join(COLLECTIONS, "ansible_collections", "gpufleet", "platform")
SHARED = os.environ.get("GPUFLEET_SHARED", os.path.join(os.path.dirname(ROOT), "shared"))

if not os.path.exists(LINK):
    os.makedirs(os.path.dirname(LINK), exist_ok=True)
    os.symlink(os.path.relpath(ROOT, os.path.dirname(LINK)), LINK)
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)
