"""The app image's Dockerfile: hadolint-clean, multi-stage, pinned, non-root."""

from __future__ import annotations

import re
import subprocess

from harness import ROOT

DOCKERFILE = ROOT / "app" / "Dockerfile"


def test_hadolint_finds_nothing() -> None:
    result = subprocess.run([str(ROOT / "venv" / "bin" / "hadolint"), str(DOCKERFILE)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_is_multi_stage_pinned_and_non_root() -> None:
    text = DOCKERFILE.read_text()
    bases = re.findall(r"^FROM (\S+)", text, re.MULTILINE)
    assert len(bases) >= 2, "build and runtime stages"
    for base in bases:
        assert re.search(r":\d+\.\d+\.\d+", base), f"{base} is not pinned to a patch version"
    users = re.findall(r"^USER (\S+)", text, re.MULTILINE)
    assert users and users[-1] == "10001", "the runtime stage runs as uid 10001"
    assert (ROOT / "app" / ".dockerignore").is_file()
