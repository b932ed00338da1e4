"""/docs and /redoc load nothing from another host: their scripts and styles are served here."""

from __future__ import annotations

import re

import pytest


def _local_refs(html: str) -> list[str]:
    refs = re.findall(r"""(?:src|href)=["']([^"']+)["']|url:\s*['"]([^'"]+)['"]""", html)
    return [a or b for a, b in refs]


@pytest.mark.parametrize(("page", "script"), [("/docs", "swagger-ui-bundle.js"),
                                              ("/redoc", "redoc.standalone.js")])
def test_docs_pages_reference_no_external_host(empty_center, page: str, script: str) -> None:
    r = empty_center.call("GET", page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert "http://" not in html and "https://" not in html and "//cdn" not in html
    refs = _local_refs(html)
    js = [u for u in refs if u.endswith(script)]
    assert js, refs
    for url in refs:
        assert url.startswith("/"), url
        got = empty_center.call("GET", url)
        assert got.status_code == 200, url
        if url.endswith(".js"):
            assert got.headers["content-type"].startswith("text/javascript")
            assert len(got.content) > 100_000  # the real bundle, not a placeholder
    spec = empty_center.call("GET", "/openapi.json").json()
    assert spec["openapi"].startswith("3.1")
    if page == "/docs":  # Swagger UI renders OpenAPI 3.1 from version 5 on
        bundle = empty_center.call("GET", js[0]).text
        assert re.search(r'"5\.\d+\.\d+"', bundle)


def test_only_the_known_assets_are_served(empty_center) -> None:
    assert empty_center.call("GET", "/static/docs/..%2Fpyproject.toml").status_code == 404
    assert empty_center.call("GET", "/static/docs/__init__.py").status_code == 404
