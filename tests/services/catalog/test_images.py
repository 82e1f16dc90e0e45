"""Product images on a real PostgreSQL: generated pictures, uploads checked by what the
bytes are, the outbox event an upload writes, and the worker's thumbnail coming back."""

from __future__ import annotations

import io
import json
import struct
import zlib

import asyncpg
import httpx
import pytest
from PIL import Image

from kansoku.services.catalog import images
from tests.services.catalog.conftest import ADMIN, TOKENS

SERVICE = TOKENS.headers("service", "service:worker")


def picture_bytes(kind: str = "PNG", size: tuple[int, int] = (64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, kind)
    return out.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims enormous dimensions: a decompression bomb."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + header
    ihdr = struct.pack(">I", len(header)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    return b"\x89PNG\r\n\x1a\n" + ihdr + picture_bytes()[33:]


async def new_product(catalog: httpx.AsyncClient, name: str) -> dict[str, object]:
    created = await catalog.post("/products", headers=ADMIN, json={
        "name": name, "price": "9.99", "category": "cameras"})
    assert created.status_code == 201, created.text
    product: dict[str, object] = created.json()
    return product


async def outbox_events(postgres_url: str, product_id: object) -> list[dict[str, object]]:
    connection = await asyncpg.connect(postgres_url)
    try:
        rows = await connection.fetch(
            "SELECT subject, payload FROM catalog.outbox WHERE subject = "
            "'product.image_uploaded' ORDER BY created_at")
    finally:
        await connection.close()
    payloads = [json.loads(row["payload"]) for row in rows]
    return [payload for payload in payloads if payload["product_id"] == product_id]


async def test_every_product_has_a_generated_picture(catalog: httpx.AsyncClient) -> None:
    product = (await catalog.get("/products/1")).json()
    assert product["image_version"] is None
    assert product["image_url"] == "/api/v1/products/1/image?v=0"
    assert product["thumbnail_url"] == "/api/v1/products/1/thumbnail?v=0"
    image = await catalog.get("/products/1/image")
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/svg+xml"
    assert b"Orion Refractor" in image.content
    assert "default-src 'none'" in image.headers["content-security-policy"]
    again = await catalog.get("/products/1/image",
                              headers={"If-None-Match": image.headers["etag"]})
    assert again.status_code == 304
    other = await catalog.get("/products/2/image")
    assert other.content != image.content


def test_generated_pictures_escape_the_name() -> None:
    svg = images.generated_picture(7, '<script>alert("x")</script>', "unknown").decode()
    assert "<script>" not in svg and "&lt;script&gt;" in svg


async def test_upload_then_thumbnail(catalog: httpx.AsyncClient, postgres_url: str) -> None:
    product = await new_product(catalog, "Photo Camera")
    original = picture_bytes("PNG", (640, 480))
    path = f"/products/{product['id']}"

    refused = await catalog.put(f"{path}/image", content=original,
                                headers={**TOKENS.headers(), "Content-Type": "image/png"})
    uploaded = await catalog.put(f"{path}/image", content=original,
                                 headers={**ADMIN, "Content-Type": "image/png"})
    assert refused.status_code == 403
    assert uploaded.status_code == 200, uploaded.text
    assert uploaded.json()["image_version"] == 1
    assert uploaded.json()["thumbnail_url"] is None, "no thumbnail until the worker made it"

    served = await catalog.get(f"{path}/image", params={"version": 1})
    assert served.content == original and served.headers["content-type"] == "image/png"
    pending = await catalog.get(f"{path}/thumbnail")
    assert pending.status_code == 404 and pending.json()["type"].endswith("thumbnail-pending")
    events = await outbox_events(postgres_url, product["id"])
    assert [(e["version"], e["content_type"], e["width"]) for e in events] == [
        (1, "image/png", 640)]

    thumbnail = picture_bytes("WEBP", (320, 240))
    customer = await catalog.put(f"{path}/thumbnail", params={"version": 1},
                                 content=thumbnail, headers=TOKENS.headers())
    stored = await catalog.put(f"{path}/thumbnail", params={"version": 1},
                               content=thumbnail, headers=SERVICE)
    assert customer.status_code == 403
    assert stored.status_code == 204, stored.text
    detail = (await catalog.get(path)).json()
    assert detail["thumbnail_url"] == f"/api/v1/products/{product['id']}/thumbnail?v=1"
    small = await catalog.get(f"{path}/thumbnail")
    assert small.content == thumbnail and small.headers["content-type"] == "image/webp"


async def test_a_thumbnail_of_a_replaced_image_is_refused(catalog: httpx.AsyncClient) -> None:
    product = await new_product(catalog, "Twice Uploaded")
    path = f"/products/{product['id']}"
    for colour in ("PNG", "JPEG"):
        answer = await catalog.put(f"{path}/image", content=picture_bytes(colour),
                                   headers=ADMIN)
        assert answer.status_code == 200
    assert answer.json()["image_version"] == 2
    stale = await catalog.put(f"{path}/thumbnail", params={"version": 1},
                              content=picture_bytes("WEBP"), headers=SERVICE)
    assert stale.status_code == 409
    gone = await catalog.get(f"{path}/image", params={"version": 1})
    assert gone.status_code == 404
    current = await catalog.get(f"{path}/image")
    assert current.headers["content-type"] == "image/jpeg"


@pytest.mark.parametrize(("body", "status", "says"), [
    (b"plain text, not a picture", 422, "not an image"),
    (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', 422,
     "not an image"),
    (png_claiming(100_000, 100_000), 422, "pixels"),
    (b"", 422, "request body"),
])
async def test_bad_uploads_get_a_clear_answer(catalog: httpx.AsyncClient, body: bytes,
                                              status: int, says: str) -> None:
    answer = await catalog.put("/products/3/image", content=body, headers=ADMIN)
    assert answer.status_code == status, answer.text
    assert says in answer.json()["detail"]
    assert (await catalog.get("/products/3")).json()["image_version"] is None


async def test_too_large_uploads_are_refused(catalog: httpx.AsyncClient) -> None:
    answer = await catalog.put("/products/3/image", content=b"x" * (5 * 1024 * 1024 + 1),
                               headers=ADMIN)
    assert answer.status_code == 413
    assert answer.json()["type"].endswith("image-too-large")


async def test_uploading_for_a_missing_product(catalog: httpx.AsyncClient) -> None:
    answer = await catalog.put("/products/99999/image", content=picture_bytes(),
                               headers=ADMIN)
    assert answer.status_code == 404
