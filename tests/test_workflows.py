"""The GitHub workflows: lint-clean, security-clean, and shaped the way the README promises."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
# Built by `make venv` from the Go module proxy at the Makefile's ACTIONLINT_VERSION.
ACTIONLINT = ROOT / "venv" / "bin" / "actionlint"


def load(name: str) -> dict[str, Any]:
    workflow = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the bare key `on` as True.
    workflow["on"] = workflow.pop(True)
    return dict(workflow)


def steps(job: dict[str, Any], uses: str) -> list[dict[str, Any]]:
    return [s for s in job["steps"] if str(s.get("uses", "")).startswith(uses)]


def test_actionlint_finds_nothing() -> None:
    assert ACTIONLINT.is_file(), "run `make venv` first (it builds actionlint)"
    files = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    result = subprocess.run([str(ACTIONLINT), "-format", "{{json .}}", *files],
                            capture_output=True, text=True, timeout=120, check=False)
    assert json.loads(result.stdout) == [], result.stderr
    assert result.returncode == 0, result.stderr


def test_actionlint_catches_a_script_injection(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("on: issues\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
                   "      - run: echo ${{ github.event.issue.title }}\n")
    result = subprocess.run([str(ACTIONLINT), str(bad)], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 1 and "potentially untrusted" in result.stdout


def test_zizmor_finds_nothing() -> None:
    result = subprocess.run(
        [str(ROOT / "venv" / "bin" / "zizmor"), "--offline", "--config",
         str(ROOT / ".github" / "zizmor.yml"), str(WORKFLOWS)],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ci_runs_the_readme_test_command_on_every_push_and_pr() -> None:
    ci = load("ci.yml")
    assert "push" in ci["on"] and "pull_request" in ci["on"]
    runs = [s.get("run", "") for s in ci["jobs"]["test"]["steps"]]
    assert "make test" in runs and "make lint" in runs
    assert any("hadolint" in r for r in runs) and any("actionlint" in r for r in runs)
    assert (ROOT / ".ci" / "run").read_text().strip().endswith("make test")


def test_preview_comments_a_policy_checked_diff_for_dev_and_prod() -> None:
    preview = load("preview.yml")
    assert set(preview["on"]) == {"pull_request"}
    assert preview["permissions"] == {}
    job = preview["jobs"]["preview"]
    assert job["permissions"] == {"contents": "read", "id-token": "write",
                                  "pull-requests": "write"}
    assert job["strategy"]["matrix"]["stack"] == ["dev", "prod"]
    (pulumi,) = steps(job, "pulumi/actions@")
    assert pulumi["with"]["command"] == "preview"
    assert pulumi["with"]["comment-on-pr"] is True and pulumi["with"]["diff"] is True
    assert pulumi["with"]["policyPacks"] == "policies"
    assert pulumi["with"]["policyPackConfigs"] == "policies/config/${{ matrix.stack }}.json"
    (aws,) = steps(job, "aws-actions/configure-aws-credentials@")
    assert aws["with"]["role-to-assume"].startswith("${{ vars.")
    order = [s.get("uses", s.get("run", "")) for s in job["steps"]]
    install = next(i for i, s in enumerate(order) if "make venv" in s)
    assert install < order.index(pulumi["uses"]), "dependencies must be installed first"


def test_deploy_sends_main_to_dev_and_releases_to_reviewed_prod() -> None:
    deploy = load("deploy.yml")
    assert deploy["on"]["push"]["branches"] == ["main"]
    assert "release" in deploy["on"] and "workflow_dispatch" in deploy["on"]
    dev, prod = deploy["jobs"]["dev"], deploy["jobs"]["prod"]
    assert "push" in dev["if"] and "release" in prod["if"]
    assert prod["environment"] == "production", "required reviewers live on the environment"
    for job, stack in ((dev, "dev"), (prod, "prod")):
        (pulumi,) = steps(job, "pulumi/actions@")
        assert pulumi["with"]["command"] == "up" and pulumi["with"]["stack-name"] == stack
        assert pulumi["with"]["policyPackConfigs"] == f"policies/config/{stack}.json"
        assert job["concurrency"]["cancel-in-progress"] is False
        assert job["permissions"]["id-token"] == "write"


def test_drift_check_refreshes_expects_no_changes_and_reports() -> None:
    drift = load("drift.yml")
    assert drift["on"]["schedule"]
    job = drift["jobs"]["drift"]
    (pulumi,) = steps(job, "pulumi/actions@")
    assert pulumi["with"]["refresh"] is True and pulumi["with"]["expect-no-changes"] is True
    report = [s for s in job["steps"] if s.get("if") == "failure()"]
    assert report and "gh issue" in report[0]["run"]
    assert job["permissions"]["issues"] == "write"


@pytest.mark.parametrize("name", ["ci.yml", "preview.yml", "deploy.yml", "drift.yml"])
def test_checkouts_do_not_persist_credentials(name: str) -> None:
    for job in load(name)["jobs"].values():
        for checkout in steps(job, "actions/checkout@"):
            assert checkout["with"]["persist-credentials"] is False
