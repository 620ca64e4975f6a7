"""`Pulumi.yaml`'s config block and docs/configuration.md, generated from the one declaration.

`keys.py` declares every key once; this module writes it out for the Pulumi CLI (which checks stack
values against the declared types) and for readers (with what `Pulumi.dev.yaml` and
`Pulumi.local.yaml` set instead of the production default). `make config-docs` rewrites both
files; a test fails when either differs from what this module generates.

    python -m components.config.reference
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from components.config.keys import KEYS, SECRET_KEYS, Key
from components.config.reader import NAMESPACE, stack_file_values

ROOT = Path(__file__).resolve().parents[2]
PULUMI_YAML = ROOT / "Pulumi.yaml"
REFERENCE = ROOT / "docs" / "configuration.md"
COMPARED_STACKS = ("dev", "local")

_PROJECT = f"""\
name: {NAMESPACE}
description: Takes an LLM agent service from source to production on Kubernetes (local) or AWS \
EKS (dev, prod).
runtime:
  name: python
  options:
    toolchain: pip
    virtualenv: venv
config:
  # Generated from components/config/keys.py by `make config-docs`; edit that file, not this
  # block. Secret keys have no default and are set with `pulumi config set --secret`; they are
  # listed in docs/configuration.md.
"""

_INTRO = """\
# Configuration reference

<!-- Generated from components/config/keys.py by `make config-docs`; edit that file. -->

Every key lives in the `agent-platform:` namespace and is declared once, with its type,
description and production default, in
[`components/config/keys.py`](../components/config/keys.py); `Pulumi.yaml` and this page are
generated from it. The program reads and checks every key before any resource is registered
([`components/config/`](../components/config/)). A bad value stops it with one message listing
every bad key, its value and what is allowed, e.g.

```
ConfigError: stack 'prod' has invalid config:
  - agent-platform:dbBackupRetentionDays = 7 is invalid: prod keeps at least 14 days of backups
  - agent-platform:nodeMinSize = 4 is invalid: must not exceed nodeMaxSize (3)
```

Unknown keys in the namespace (typos) are refused too. With `environment: prod` the program also
refuses settings that are insecure or not redundant: a public EKS endpoint without an allow-list
(or with `0.0.0.0/0`), single-AZ or unprotected Postgres, fewer than 14 days of backups, a single
NAT gateway, fewer than 3 nodes or zones, no Valkey replica, missing api/audit/authenticator
logs, or an `imageRef` without a digest.

The table lists each key's production default and what `Pulumi.dev.yaml` and `Pulumi.local.yaml`
set instead (AWS stacks also set `aws:region`).

| key | type | default (prod) | dev | local | meaning |
|---|---|---|---|---|---|
"""

_SECRETS = """
## Secret keys

They have no default, are not declared in `Pulumi.yaml` (a declared key without a default would be
required in every stack), and must be set with `pulumi config set --secret <key> <value>`: a
plain-text value is refused, naming the key but never the value. They reach pods only through
Kubernetes Secrets.

| key | meaning |
|---|---|
"""


def _entry(key: Key) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": key.type}
    if key.type == "array":
        spec["items"] = {"type": "string"}  # the CLI checks each element's type too
    return {key.name: {**spec, "description": key.description, "default": key.default}}


def pulumi_yaml() -> str:
    entries = "".join(yaml.safe_dump(_entry(key), sort_keys=False, width=10_000)
                      for key in KEYS)
    return _PROJECT + "".join(f"  {line}\n" for line in entries.splitlines())


def _shown(value: Any) -> str:
    if value is None:
        return ""
    if value == "" or value == []:
        return "(empty)"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, list):
        return f"`{json.dumps(value)}`"
    return f"`{value}`"


def configuration_markdown() -> str:
    stacks = {stack: stack_file_values(ROOT, stack) for stack in COMPARED_STACKS}
    rows = [f"| `{key.name}` | {key.type} | {_shown(key.default)} | "
            + " | ".join(_shown(stacks[s].get(key.name)) for s in COMPARED_STACKS)
            + f" | {key.description} |" for key in KEYS]
    secrets = [f"| `{key.name}` | {key.description} |" for key in SECRET_KEYS]
    return _INTRO + "\n".join(rows) + "\n" + _SECRETS + "\n".join(secrets) + "\n"


def main() -> None:
    PULUMI_YAML.write_text(pulumi_yaml())
    REFERENCE.write_text(configuration_markdown())


if __name__ == "__main__":
    main()
