"""Interactive API documentation (``/docs``: Swagger UI, ``/redoc``: ReDoc) served entirely from
this process: the JavaScript and CSS come from the ``fastapi-offline`` package's bundled copies
(Swagger UI 5, which renders the OpenAPI 3.1 document FastAPI writes), so the pages work on a
site with no route to the internet."""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

from aicc.errors import NotFound

router = APIRouter(include_in_schema=False)

ASSET_PREFIX = "/static/docs"
ASSETS = {  # served name -> media type; nothing else under the prefix is served
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "redoc.standalone.js": "text/javascript",
    "favicon.png": "image/png",
}


@cache
def asset_dir() -> Path:
    return Path(str(resources.files("fastapi_offline") / "static"))


def _openapi_url(request: Request) -> str:
    return request.app.openapi_url or "/openapi.json"


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url=_openapi_url(request), title=f"{request.app.title} — API",
        swagger_js_url=f"{ASSET_PREFIX}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSET_PREFIX}/swagger-ui.css",
        swagger_favicon_url=f"{ASSET_PREFIX}/favicon.png")


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    return get_redoc_html(
        openapi_url=_openapi_url(request), title=f"{request.app.title} — API",
        redoc_js_url=f"{ASSET_PREFIX}/redoc.standalone.js",
        redoc_favicon_url=f"{ASSET_PREFIX}/favicon.png", with_google_fonts=False)


@router.get(ASSET_PREFIX + "/{name}")
async def asset(name: str) -> FileResponse:
    media = ASSETS.get(name)
    if media is None:
        raise NotFound(f"no documentation asset {name!r}", field="name")
    return FileResponse(asset_dir() / name, media_type=media,
                        headers={"Cache-Control": "public, max-age=86400"})
