"""Fixtures for the gateway tests.

The fake Verify fixtures are imported here so this directory works before tests/conftest.py lists
`tests.fakeverify.plugin` in `pytest_plugins`; afterwards these names merely shadow the identical plugin ones.
"""

from __future__ import annotations

from tests.fakeverify.plugin import _fake_verify_server, fake_verify, twilio_settings

__all__ = ["_fake_verify_server", "fake_verify", "twilio_settings"]
