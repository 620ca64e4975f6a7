"""Locates the Prometheus binaries the monitoring tests need (Debian packages `prometheus` and
`prometheus-alertmanager`, installed by `make venv`). Missing binaries fail the tests loudly
instead of skipping them."""

from __future__ import annotations

import os
import shutil

import pytest

INSTALL_HINT = ("install the Debian packages prometheus and prometheus-alertmanager (`make "
                "venv` does it with apt-get), or set PROMTOOL / PROMETHEUS / AMTOOL to the "
                "binaries")


def _binary(name: str) -> str:
    found = os.environ.get(name.upper()) or shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: {INSTALL_HINT}", pytrace=False)
    return found


def promtool() -> str:
    return _binary("promtool")


def prometheus() -> str:
    return _binary("prometheus")


def amtool() -> str:
    return _binary("amtool")
