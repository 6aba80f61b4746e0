"""Static files: compressed on the wire; HTML pages never compressed (they carry CSRF tokens: BREACH)."""

from __future__ import annotations

from starlette.testclient import TestClient


def test_static_files_are_gzipped_when_the_browser_accepts_it(client: TestClient) -> None:
    r = client.get("/static/vendor/htmx-4.0.1.min.js", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200
    assert r.headers["content-encoding"] == "gzip"
    assert int(r.headers["content-length"]) < 20_000
    assert "htmx" in r.text  # httpx decodes it


def test_html_pages_are_not_compressed(client: TestClient) -> None:
    r = client.get("/login", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200
    assert "content-encoding" not in r.headers
    assert 'name="csrf_token"' in r.text
