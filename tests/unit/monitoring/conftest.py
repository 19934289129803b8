import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import render  # noqa: E402


@pytest.fixture(scope="session")
def promtool():
    if not os.access(render.PROMTOOL, os.X_OK):
        pytest.skip("promtool %s not built at %s: run `make promtool` (make units builds it first)"
                    % (render.PROMTOOL_VERSION, render.PROMTOOL))
    return render.PROMTOOL
