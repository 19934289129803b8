"""The lab's pure code (lab/gpufleet_lab) on sys.path, as in tests/integration/lab/conftest.py; no lab needed."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
LAB_DIR = os.path.join(ROOT, "lab")
if LAB_DIR not in sys.path:
    sys.path.insert(0, LAB_DIR)
