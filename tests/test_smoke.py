from __future__ import annotations

from starlette.testclient import TestClient

from tests.helpers import signed_in_client


def test_register_login_profile_logout(client: TestClient) -> None:
    signed_in_client(client)
    r = client.get("/profile")
    assert r.status_code == 200, r.text
    assert "alice" in r.text
