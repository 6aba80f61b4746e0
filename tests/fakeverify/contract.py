"""Check recorded requests against Twilio's published Verify v2 contract (extracted to verify_v2_contract.json)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONTRACT_PATH = Path(__file__).with_name("verify_v2_contract.json")
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class Operation:
    operation_id: str
    method: str
    path: str
    path_params: dict[str, dict[str, Any]]
    form: dict[str, dict[str, Any]]
    required: tuple[str, ...]

    def match(self, path: str) -> dict[str, str] | None:
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.path))
        found = re.fullmatch(pattern, path)
        return found.groupdict() if found else None


def load(path: Path = CONTRACT_PATH) -> list[Operation]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return [
        Operation(op["operation_id"], op["method"], op["path"], op["path_params"], op["form"], tuple(op["required"]))
        for op in data["operations"]
    ]


def _value_problems(name: str, value: str, schema: dict[str, Any]) -> list[str]:
    problems = []
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{name}={value!r} not in {schema['enum']}")
    if "pattern" in schema and not re.search(schema["pattern"], value):
        problems.append(f"{name}={value!r} does not match {schema['pattern']}")
    if not schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", len(value)):
        problems.append(f"{name} length {len(value)} outside the schema's bounds")
    if schema.get("type") == "boolean" and value not in {"true", "false"}:
        problems.append(f"{name}={value!r} is not a boolean")
    return problems


def validate(
    operations: list[Operation], method: str, path: str, pairs: list[tuple[str, str]], content_type: str
) -> tuple[Operation | None, list[str]]:
    """Return the operation the request is for (None if the contract has no such path and method) and problems."""
    for op in operations:
        params = op.match(path)
        if params is None or op.method != method:
            continue
        problems = []
        for name, value in params.items():
            problems += _value_problems(name, value, op.path_params.get(name, {}))
        if method == "POST" and content_type.split(";")[0].strip() != FORM_CONTENT_TYPE:
            problems.append(f"Content-Type {content_type!r} is not {FORM_CONTENT_TYPE}")
        names = [name for name, _ in pairs]
        problems += [f"form key {name} sent twice" for name in sorted(set(names)) if names.count(name) > 1]
        for name, value in pairs:
            if name not in op.form:
                problems.append(f"form key {name} is not in {op.operation_id}'s request schema")
            else:
                problems += _value_problems(name, value, op.form[name])
        problems += [f"required form key {name} missing" for name in op.required if name not in names]
        return op, [f"{op.operation_id}: {problem}" for problem in problems]
    return None, [f"{method} {path} is not a Verify v2 operation the contract knows"]
