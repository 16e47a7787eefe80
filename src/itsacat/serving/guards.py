"""Input guards: reading a request's picture without trusting its size, type or shape.

The body is read with a byte limit, checked on the declared Content-Length first and again
while the body streams in, so an oversized upload is rejected without being buffered. Which
of the three request forms was sent (multipart file, raw body, JSON with a URL) is decided by
the Content-Type. The picture's own format is decided later, by its content alone.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from itsacat.serving.errors import BODY_TOO_LARGE, INVALID_JSON, MISSING_IMAGE
from itsacat.serving.fetch import FetchPolicy, fetch_image

FILE_FIELD = "file"


@dataclass(frozen=True)
class ImageInput:
    """The picture's bytes and a name for messages (the file name or URL)."""

    data: bytes
    name: str


async def read_body(request: Request, limit: int) -> bytes:
    """Return the request body, raising BODY_TOO_LARGE as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BODY_TOO_LARGE.error(limit=limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BODY_TOO_LARGE.error(limit=limit)
    return bytes(body)


async def read_image_input(request: Request, max_body_bytes: int, fetch: FetchPolicy
                           ) -> ImageInput:
    """Read the picture of a `POST /predict` request in whichever form it was sent."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    reader = INPUT_READERS.get(media_type, _raw_input)
    body = await read_body(request, max_body_bytes)
    return await reader(request, body, fetch)


async def _multipart_input(request: Request, body: bytes, fetch: FetchPolicy) -> ImageInput:
    data, filename = extract_multipart_file(body, request.headers.get("content-type", ""))
    return ImageInput(data, filename or "uploaded file")


async def _raw_input(request: Request, body: bytes, fetch: FetchPolicy) -> ImageInput:
    return ImageInput(body, "request body")


async def _json_input(request: Request, body: bytes, fetch: FetchPolicy) -> ImageInput:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise INVALID_JSON.error(reason=str(error)) from None
    url = document.get("url") if isinstance(document, dict) else None
    if not isinstance(url, str) or not url:
        raise MISSING_IMAGE.error(where="the JSON body has no \"url\" string")
    # NOTE: the number of fetches in flight is not capped. Each one is bounded by the fetch
    # deadline and byte cap, and waits without holding a thread, but many at once add up.
    return ImageInput(await fetch_image(url, fetch), url)


INPUT_READERS: dict[str, Callable[[Request, bytes, FetchPolicy], Awaitable[ImageInput]]] = {
    "multipart/form-data": _multipart_input,
    "application/json": _json_input,
}


def extract_multipart_file(body: bytes, content_type: str) -> tuple[bytes, str | None]:
    """Return the bytes and file name of the field `file` (or else the first file field).

    The parts are kept in memory; the body was already limited by `read_body`.
    """
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise MISSING_IMAGE.error(where="the multipart body has no boundary")

    parts = _parse_parts(body, boundary)
    chosen = next((part for part in parts if part.field == FILE_FIELD), None) or next(
        (part for part in parts if part.filename is not None), None)
    if chosen is None:
        raise MISSING_IMAGE.error(where=f"the multipart body has no file field "
                                  f"(found {', '.join(repr(p.field) for p in parts) or 'none'})")
    return bytes(chosen.data), chosen.filename


@dataclass
class _Part:
    field: str | None = None
    filename: str | None = None
    data: bytearray | None = None


def _parse_parts(body: bytes, boundary: bytes) -> list[_Part]:
    parts: list[_Part] = []
    header_name, header_value = bytearray(), bytearray()

    def on_part_begin() -> None:
        parts.append(_Part(data=bytearray()))

    def on_header_end() -> None:
        if bytes(header_name).lower() == b"content-disposition":
            _, options = parse_options_header(bytes(header_value))
            part = parts[-1]
            part.field = _text(options.get(b"name"))
            part.filename = _text(options.get(b"filename"))
        header_name.clear()
        header_value.clear()

    callbacks = {
        "on_part_begin": on_part_begin,
        "on_part_data": lambda data, start, end: parts[-1].data.extend(data[start:end]),
        "on_header_field": lambda data, start, end: header_name.extend(data[start:end]),
        "on_header_value": lambda data, start, end: header_value.extend(data[start:end]),
        "on_header_end": on_header_end,
    }
    try:
        parser = MultipartParser(boundary, callbacks)
        parser.write(body)
        parser.finalize()
    except MultipartParseError as error:
        raise MISSING_IMAGE.error(where=f"the multipart body cannot be parsed ({error})"
                                  ) from None
    return parts


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("utf-8", errors="replace")
