"""Phone input (R-V1…R-V3): parsed inside try, valid, allowed country, no premium numbers, stored as E.164."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType
from phonenumbers.geocoder import country_name_for_number

MAX_PHONE_INPUT = 32
REFUSED_TYPES = {PhoneNumberType.PREMIUM_RATE, PhoneNumberType.SHARED_COST, PhoneNumberType.UNKNOWN}


@dataclass(frozen=True)
class Country:
    region: str
    name: str
    calling_code: int


@lru_cache(maxsize=8)
def country_options(allowed: frozenset[str]) -> tuple[Country, ...]:
    """The allowed regions with names from phonenumbers' metadata, for the server-rendered country selector."""
    options = []
    for region in allowed:
        code = phonenumbers.country_code_for_region(region)
        example = phonenumbers.example_number(region)
        name = country_name_for_number(example, "en") if example else region
        options.append(Country(region, name or region, code))
    return tuple(sorted(options, key=lambda c: c.name))


def region_from_language(accept_language: str, allowed: frozenset[str], default: str) -> str:
    """Preselect the country from the browser's language (`en-GB` → GB) when it is allowed."""
    for part in accept_language.split(",")[:8]:
        tag = part.split(";")[0].strip()
        if "-" in tag:
            region = tag.rsplit("-", 1)[1].upper()
            if region in allowed:
                return region
    return default if default in allowed else min(allowed)


def parse_phone(raw: str, region: str, allowed: frozenset[str]) -> tuple[str | None, str | None]:
    """(E.164, None) or (None, message). Never raises: the tutorial's 500 on `not a number` (K2)."""
    text = raw.strip()
    if not text:
        return None, "Enter a phone number."
    if len(text) > MAX_PHONE_INPUT:
        return None, f"A phone number has at most {MAX_PHONE_INPUT} characters."
    if region not in allowed:
        region = ""
    try:
        number = phonenumbers.parse(text, region or None)
    except NumberParseException:
        return None, "That doesn't look like a phone number. Include the country code, like +44 7400 123456."
    if not phonenumbers.is_valid_number(number):
        return None, "That isn't a valid phone number. Check the digits and the country."
    if phonenumbers.region_code_for_number(number) not in allowed:
        return None, "We can't send codes to that country."
    if phonenumbers.number_type(number) in REFUSED_TYPES:
        return None, "That kind of number (premium-rate or shared-cost) can't receive codes. Use a mobile number."
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), None


def mask(e164: str) -> str:
    """`+14155550123` → `+1 •••-•••-••23` style: country code and last two digits only (R-PR1)."""
    try:
        number = phonenumbers.parse(e164)
        prefix = f"+{number.country_code}"
        national = str(number.national_number)
    except NumberParseException:
        prefix, national = "", e164.lstrip("+")
    return f"{prefix} {'•' * max(0, len(national) - 2)}{national[-2:]}"


def last2(e164: str) -> str:
    return e164[-2:]
