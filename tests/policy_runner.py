"""Runs the policy pack's rules offline over the stacks the mocks harness renders.

`make policy` prints the stack x rule table from here; the tests use the same functions. Rules get
the inputs wrapped in pulumi-policy's unknown-checking proxy, as the CLI hands them over, and the
stack's pack config (`policies/config/<stack>.json`) merged over each rule's schema defaults.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pulumi_policy import (
    Policy,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "policies"), str(ROOT / "tests")]

from aws_rules import AWS_POLICIES  # noqa: E402
from backup_rules import BACKUP_POLICIES  # noqa: E402
from budget_rules import BUDGET_POLICIES  # noqa: E402
from delivery_rules import DELIVERY_POLICIES  # noqa: E402
from harness import STACKS, Rendered, Resource, render  # noqa: E402
from kubernetes_rules import KUBERNETES_POLICIES  # noqa: E402
from stack_rules import STACK_POLICIES  # noqa: E402

ALL_POLICIES: list[Policy] = [*AWS_POLICIES, *BACKUP_POLICIES, *BUDGET_POLICIES,
                              *DELIVERY_POLICIES, *KUBERNETES_POLICIES, *STACK_POLICIES]


@dataclass(frozen=True)
class Violation:
    policy: str
    message: str
    urn: str | None


@dataclass
class Outcome:
    """Violations per rule for one stack, the rules that met an unknown value, and the rules
    that found nothing of theirs to check (no resource whose properties they read)."""

    enforcement: dict[str, str]
    violations: dict[str, list[Violation]] = field(default_factory=dict)
    unknown: dict[str, list[str]] = field(default_factory=dict)
    not_applicable: set[str] = field(default_factory=set)


class _Watched(Mapping[str, Any]):
    """A resource's properties that remember being read: a rule that reads none of any
    resource's properties had nothing to check on the stack."""

    def __init__(self, target: Mapping[str, Any], seen: list[bool]) -> None:
        self._target = target
        self._seen = seen

    def __getitem__(self, key: str) -> Any:
        self._seen[0] = True
        return self._target[key]

    def __iter__(self) -> Iterator[str]:
        self._seen[0] = True
        return iter(self._target)

    def __len__(self) -> int:
        return len(self._target)


def pack_config(stack: str) -> dict[str, Any]:
    path = ROOT / "policies" / "config" / f"{stack}.json"
    return dict(json.loads(path.read_text())) if path.exists() else {}


def policy_config(policy: Policy, config: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """(enforcement level, settings) of one rule: schema defaults overlaid with the pack config."""
    settings: dict[str, Any] = {}
    if policy.config_schema is not None:
        settings = {k: v["default"] for k, v in policy.config_schema.properties.items()
                    if "default" in v}
    level = str(config.get("all", "mandatory"))
    entry = config.get(policy.name)
    if isinstance(entry, str):
        level = entry
    elif isinstance(entry, Mapping):
        settings.update({k: v for k, v in entry.items() if k != "enforcementLevel"})
        level = str(entry.get("enforcementLevel", level))
    return level, settings


def _options(resource: Resource) -> PolicyResourceOptions:
    return PolicyResourceOptions(protect=resource.protect,
                                 ignore_changes=list(resource.ignore_changes),
                                 delete_before_replace=resource.delete_before_replace or None,
                                 aliases=list(resource.aliases),
                                 custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
                                 additional_secret_outputs=[])


def _props(resource: Resource, seen: list[bool] | None,
           props: Mapping[str, Any] | None = None) -> Any:
    proxied = unknown_checking_proxy(dict(props if props is not None else resource.inputs))
    return proxied if seen is None else _Watched(proxied, seen)


def resource_args(resource: Resource, settings: Mapping[str, Any],
                  props: Mapping[str, Any] | None = None,
                  seen: list[bool] | None = None) -> ResourceValidationArgs:
    return ResourceValidationArgs(resource.type, _props(resource, seen, props), resource.urn,
                                  resource.name, _options(resource), None, dict(settings))


def stack_args(resources: Sequence[Resource], settings: Mapping[str, Any],
               seen: list[bool] | None = None) -> StackValidationArgs:
    """The stack as the analyzer hands it over: each resource with its parent and dependencies
    (the CLI sends the resources a resource depends on, explicitly or through an input)."""
    policy_resources = {
        r.urn: PolicyResource(r.type, _props(r, seen), r.urn, r.name, _options(r), None, None,
                              [], {})
        for r in resources}
    for r in resources:
        entry = policy_resources[r.urn]
        entry.parent = policy_resources.get(r.parent or "")
        entry.dependencies = [policy_resources[urn] for urn in r.dependency_urns
                              if urn in policy_resources]
    return StackValidationArgs(list(policy_resources.values()), dict(settings))


def check(policy: Policy, resources: Sequence[Resource], settings: Mapping[str, Any],
          seen: list[bool] | None = None) -> tuple[list[Violation], list[str]]:
    """Runs one rule the way the CLI's analyzer does; returns violations and unknown notes.
    `seen[0]` becomes true when the rule reads any resource's properties."""
    violations: list[Violation] = []
    unknown: list[str] = []

    def report(urn: str | None) -> Any:
        def _report(message: str, violating_urn: str | None = None) -> None:
            violations.append(Violation(policy.name, message, violating_urn or urn))
        return _report

    if isinstance(policy, ResourceValidationPolicy):
        for resource in resources:
            try:
                policy.validate(resource_args(resource, settings, seen=seen),
                                report(resource.urn))
            except UnknownValueError as error:
                unknown.append(f"{resource.urn}: {error.message}")
    elif isinstance(policy, StackValidationPolicy):
        try:
            policy.validate(stack_args(resources, settings, seen), report(None))
        except UnknownValueError as error:
            unknown.append(error.message)
    return violations, unknown


def evaluate(rendered: Rendered, config: Mapping[str, Any] | None = None) -> Outcome:
    config = pack_config(rendered.stack) if config is None else config
    outcome = Outcome(enforcement={})
    for policy in ALL_POLICIES:
        level, settings = policy_config(policy, config)
        outcome.enforcement[policy.name] = level
        if level == "disabled":
            continue
        seen = [False]
        violations, unknown = check(policy, rendered.resources, settings, seen)
        outcome.violations[policy.name] = violations
        if not seen[0]:
            outcome.not_applicable.add(policy.name)
        if unknown:
            outcome.unknown[policy.name] = unknown
    return outcome


def main() -> int:
    rendered = {stack: render(stack) for stack in STACKS}
    outcomes = {stack: evaluate(stack_rendered) for stack, stack_rendered in rendered.items()}
    width = max(len(p.name) for p in ALL_POLICIES)
    lines = [f"{'rule':<{width}}  " + "  ".join(f"{s:<27}" for s in STACKS)]
    blocking = 0
    for policy in ALL_POLICIES:
        cells = []
        for stack in STACKS:
            outcome = outcomes[stack]
            found = outcome.violations.get(policy.name, [])
            level = outcome.enforcement[policy.name]
            if level == "disabled":
                cells.append("disabled")
            elif found:
                cells.append(f"{len(found)} violation(s) [{level}]")
                blocking += len(found) if level == "mandatory" else 0
            elif policy.name in outcome.not_applicable:
                cells.append("n/a")
            else:
                cells.append("pass")
        lines.append(f"{policy.name:<{width}}  " + "  ".join(f"{c:<27}" for c in cells))
    # The CLI shows a program's warning under the stack being updated; here the stack says it.
    for stack, stack_rendered in rendered.items():
        for warning in dict.fromkeys(stack_rendered.warnings):
            lines.append(f"\n[{stack}] warning: {warning}")
    for stack, outcome in outcomes.items():
        for violations in outcome.violations.values():
            for v in violations:
                lines.append(f"\n[{stack}] {v.policy}: {v.message}\n    at {v.urn}")
    print("\n".join(lines))  # noqa: T201 - this is the report
    return 1 if blocking else 0


if __name__ == "__main__":
    raise SystemExit(main())
