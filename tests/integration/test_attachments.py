"""Uploads are taken by what their bytes are, not by their name or claimed type."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from callcenter.actions.attachments import sniff, store_file
from callcenter.domain.errors import InvalidInput
from callcenter.runtime import Runtime

# a real 1x1 PNG and the start of a real JPEG (JFIF) file
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 64


async def test_the_stored_type_is_read_from_the_bytes(rt: Runtime) -> None:
    stored = await store_file(rt, PNG, "image/jpeg")  # claimed to be a JPEG
    assert stored.content_type == "image/png" and stored.path.endswith(".png")
    assert (Path(rt.settings.data_dir) / stored.path).read_bytes() == PNG
    assert (await store_file(rt, JPEG, None)).content_type == "image/jpeg"


@pytest.mark.parametrize(
    ("data", "found"),
    [
        (b"<!doctype html><script>alert(document.cookie)</script>", "text/html"),
        (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="x()"/>', None),
        (b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 64, None),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "application/pdf"),
    ],
)
async def test_anything_but_a_photo_is_refused_whatever_it_is_called(
    rt: Runtime, data: bytes, found: str | None
) -> None:
    if found is not None:
        assert sniff(data) == found
    with pytest.raises(InvalidInput) as refused:
        await store_file(rt, data, "image/jpeg")
    assert refused.value.code == "file_type_not_allowed"
    assert not (Path(rt.settings.data_dir) / "attachments").exists()
