"""Form input: declared fields only, each with a maximum length, CSRF checked before anything else."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

from starlette.datastructures import UploadFile
from starlette.requests import Request

from webapp.security.csrf import CSRF_FIELD, check_csrf

# Forms never carry files; python-multipart's limits keep a hostile multipart body cheap.
FORM_LIMITS = {"max_files": 0, "max_fields": 40, "max_part_size": 16_384}
BAD_CHARS = "contains characters that aren't allowed (control characters or invisible formatting)"


@dataclass
class Form:
    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, name: str) -> str:
        return self.values.get(name, "")

    def error(self, name: str, message: str) -> None:
        self.errors.setdefault(name, message)

    @property
    def ok(self) -> bool:
        return not self.errors


def has_bad_chars(value: str, *, allow_space: bool = True) -> bool:
    for ch in value:
        category = unicodedata.category(ch)
        if category in ("Cc", "Cs", "Co", "Cn") or (category == "Cf" and ch not in "\u200d"):
            return True
        if not allow_space and ch.isspace():
            return True
    return False


async def read_form(request: Request, spec: dict[str, int], labels: dict[str, str] | None = None) -> Form:
    """Parse the body, check CSRF (raises 403), then keep only the fields in `spec` within their lengths."""
    try:
        async with request.form(**FORM_LIMITS) as data:
            raw = {key: data.get(key) for key in (*spec, CSRF_FIELD)}
    except (ValueError, KeyError, AssertionError):
        # A malformed multipart body or too many fields: treat it like an empty form (still CSRF-checked).
        raw = {}
    token = raw.get(CSRF_FIELD)
    check_csrf(request, token if isinstance(token, str) else None)
    form = Form(values={})
    for name, max_len in spec.items():
        value = raw.get(name)
        label = (labels or {}).get(name, name.replace("_", " ").capitalize())
        if isinstance(value, UploadFile):
            form.values[name] = ""
            form.error(name, f"{label} must be text.")
            continue
        text = value or ""
        if len(text) > max_len:
            form.values[name] = ""
            form.error(name, f"{label} is too long (at most {max_len} characters).")
        elif "\x00" in text or has_bad_chars(text):
            form.values[name] = ""
            form.error(name, f"{label} {BAD_CHARS}.")
        else:
            form.values[name] = text
    return form
