"""Locales Verify's default template supports (twilio.com/docs/verify/supported-languages).

An unsupported `Locale` makes Verify answer 404, which on a start would look like a wrong service SID,
so anything not on this list is dropped and Verify picks the language from the number's country.
"""

from __future__ import annotations

SUPPORTED_LOCALES = frozenset(
    {
        "af", "ar", "ca", "zh", "zh-CN", "zh-HK", "hr", "cs", "da", "nl", "en", "en-GB", "et", "fi", "fr", "de",
        "el", "he", "hi", "hu", "id", "it", "ja", "kn", "ko", "lt", "ms", "mr", "nb", "pl", "pt-BR", "pt", "ro",
        "ru", "sk", "es", "sv", "tl", "te", "th", "tr", "vi",
    }
)  # fmt: skip
_CANONICAL = {locale.lower(): locale for locale in SUPPORTED_LOCALES}


def verify_locale(value: str | None) -> str | None:
    """Map a language tag (`pt_br`, `fr-CA`) onto a supported Verify locale, or None to let Verify choose."""
    if not value:
        return None
    tag = value.strip().replace("_", "-").lower()
    return _CANONICAL.get(tag) or _CANONICAL.get(tag.split("-", 1)[0])
