"""Extract the part of Twilio's Verify v2 OpenAPI spec the app uses into a small committed JSON file.

The fake Verify server (tests/fakeverify) validates every request against that file, so tests run without the
full spec. Re-run after bumping the vendored spec:

    python scripts/extract_verify_contract.py ../shared/twilio-oai/twilio_verify_v2.json \
        tests/fakeverify/verify_v2_contract.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

# (method, path) of every operation the app calls, plus fetch for diagnostics.
OPERATIONS = (
    ("post", "/v2/Services/{ServiceSid}/Verifications"),
    ("post", "/v2/Services/{ServiceSid}/VerificationCheck"),
    ("post", "/v2/Services/{ServiceSid}/Verifications/{Sid}"),
    ("get", "/v2/Services/{ServiceSid}/Verifications/{Sid}"),
)
_KEEP = ("type", "enum", "pattern", "minLength", "maxLength")


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        schema = spec["components"]["schemas"][name]
    return {key: schema[key] for key in _KEEP if key in schema}


def extract(spec: dict[str, Any]) -> dict[str, Any]:
    operations = []
    for method, path in OPERATIONS:
        op = spec["paths"][path][method]
        form = op.get("requestBody", {}).get("content", {}).get("application/x-www-form-urlencoded", {})
        schema = form.get("schema", {})
        operations.append(
            {
                "operation_id": op["operationId"],
                "method": method.upper(),
                "path": path,
                "path_params": {p["name"]: _resolve(spec, p["schema"]) for p in op.get("parameters", [])},
                "form": {name: _resolve(spec, prop) for name, prop in schema.get("properties", {}).items()},
                "required": sorted(schema.get("required", [])),
                "responses": sorted(op["responses"]),
            }
        )
    return {"source": "twilio/twilio-oai spec/json/twilio_verify_v2.json", "operations": operations}


def render(spec_path: Path) -> str:
    return json.dumps(extract(json.loads(spec_path.read_text(encoding="utf-8"))), indent=2, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    Path(argv[2]).write_text(render(Path(argv[1])), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
