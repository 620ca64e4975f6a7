"""Custom resources against the CRDs that define them, as vendored: the JSON schema of one served
version (types, enums, required fields; the API server's CEL rules are not evaluated)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import jsonschema
import yaml


def crd_validator(files: Iterable[Path], version: str,
                  kind: str | None = None) -> jsonschema.Draft7Validator:
    """The validator of `kind` (or of the only CRD in `files`) at `version`."""
    crds = [doc for path in files for doc in yaml.safe_load_all(path.read_text())
            if doc and doc["kind"] == "CustomResourceDefinition"
            and kind in (None, doc["spec"]["names"]["kind"])]
    assert len(crds) == 1, f"expected one CRD for {kind or 'the file'}, found {len(crds)}"
    (served,) = [v for v in crds[0]["spec"]["versions"] if v["name"] == version]
    return jsonschema.Draft7Validator(served["schema"]["openAPIV3Schema"])
