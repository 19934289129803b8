#!/usr/bin/env python3
"""gpufleet lab entry point: `lab.py up|down|status|summary|clean|gen-config|charts` (see docs/lab.md)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from gpufleet_lab.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
