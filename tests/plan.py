"""The plan `pulumi up` would show between two renders of a stack, derived offline.

Resources are matched by URN (a new resource's `aliases` match its old URN). A Kubernetes object
whose change touches a field of the provider's replacement table is replaced: create-before-delete
when auto-named, delete-before-replace when its name is fixed, as pulumi-kubernetes decides. A
delete-before-replace makes the engine replace every resource that depends on the replaced one
(explicitly or through an Output), transitively: that cascade is what turned a config change into
an outage, and what the day-2 tests look for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harness import Rendered, Resource
from replacement_rules import kind_of, replaced_by, value_at


@dataclass
class Step:
    resource: Resource
    op: str
    """`update`, `replace`, `create` or `delete`."""
    reasons: list[str] = field(default_factory=list)
    delete_before_replace: bool = False
    cascaded_from: str | None = None
    """URN of the delete-before-replace that forces this replacement."""


def _without(inputs: Mapping[str, Any], ignored: tuple[str, ...]) -> dict[str, Any]:
    """The inputs minus `ignore_changes` paths, which the engine carries over from the state."""
    copy: dict[str, Any] = dict(inputs)
    for path in ignored:
        parts = path.split(".")
        node: Any = copy
        for part in parts[:-1]:
            if not isinstance(node, dict) or part not in node:
                node = None
                break
            node[part] = dict(node[part]) if isinstance(node[part], Mapping) else node[part]
            node = node[part]
        if isinstance(node, dict):
            node.pop(parts[-1], None)
    return copy


def _changed_paths(before: Any, after: Any, prefix: str = "") -> list[str]:
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        paths: list[str] = []
        for key in sorted(set(before) | set(after)):
            paths += _changed_paths(before.get(key), after.get(key), f"{prefix}{key}.")
        return paths
    return [] if before == after else [prefix.rstrip(".")]


def plan(before: Rendered, after: Rendered) -> dict[str, Step]:
    """Every step of the update, keyed by the resource's new URN (old URN for deletes)."""
    old = before.by_urn()
    steps: dict[str, Step] = {}
    matched: set[str] = set()
    for resource in after.resources:
        previous = next((old[u] for u in (resource.urn, *resource.aliases) if u in old), None)
        if previous is None:
            steps[resource.urn] = Step(resource, "create")
            continue
        matched.add(previous.urn)
        olds = _without(previous.inputs, resource.ignore_changes)
        news = _without(resource.inputs, resource.ignore_changes)
        if olds == news:
            continue
        kind = kind_of(resource.type)
        reasons = replaced_by(kind, olds, news) if kind else []
        # `replace_on_changes` turns a change of those inputs into a replacement, as here.
        reasons += [path for path in resource.replace_on_changes
                    if value_at(olds, path) != value_at(news, path)]
        if reasons:
            fixed = not resource.autonamed
            steps[resource.urn] = Step(resource, "replace", reasons,
                                       delete_before_replace=fixed
                                       or resource.delete_before_replace)
        else:
            steps[resource.urn] = Step(resource, "update", _changed_paths(olds, news))
    for urn, resource in old.items():
        if urn not in matched:
            steps[urn] = Step(resource, "delete")
    _cascade(after, steps)
    return steps


def _cascade(after: Rendered, steps: dict[str, Step]) -> None:
    pending = [urn for urn, step in steps.items() if step.delete_before_replace]
    while pending:
        root = pending.pop()
        for resource in after.resources:
            # The engine replaces dependents that are provider resources; a component is only
            # a grouping and is never replaced (its own children list their dependencies).
            if not resource.custom or root not in resource.dependency_urns:
                continue
            step = steps.get(resource.urn)
            if step is not None and step.op == "replace":
                continue
            steps[resource.urn] = Step(resource, "replace", ["a dependency is deleted first"],
                                       delete_before_replace=True, cascaded_from=root)
            pending.append(resource.urn)


def summary(steps: Mapping[str, Step]) -> dict[str, set[str]]:
    """`{op: {"Kind/logical-name", ...}}`, what a reader of the preview sees."""
    found: dict[str, set[str]] = {}
    for step in steps.values():
        op = step.op + ("-delete-first" if step.delete_before_replace else "")
        kind = step.resource.type.rsplit(":", 1)[-1]
        found.setdefault(op, set()).add(f"{kind}/{step.resource.name}")
    return found
