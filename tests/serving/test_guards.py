"""Input guards: every kind of bad upload gets a 4xx JSON error naming the problem, and the
service keeps serving good uploads afterwards."""

from __future__ import annotations

import io

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from itsacat.serving import ServingSettings, create_app
from itsacat.serving.swap import StaticSource

from .conftest import served
from .test_routes import png_bytes, random_pixels


def encoded(pixels: np.ndarray, image_format: str, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=image_format, **options)
    return buffer.getvalue()


def limited_client(model, **limits) -> TestClient:
    return TestClient(create_app(ServingSettings(slot="blue", **limits),
                                 StaticSource(served(model))))


def assert_still_serving(client: TestClient) -> None:
    response = client.post("/predict", content=png_bytes(random_pixels(9)))
    assert response.status_code == 200


def test_body_over_declared_limit_returns_413(model):
    with limited_client(model, max_body_bytes=1000) as client:
        response = client.post("/predict", content=b"\x89PNG" + b"0" * 2000)
        assert_still_serving_small = client.post("/predict", content=png_bytes(
            random_pixels()[:8, :8]))

    assert response.status_code == 413
    assert response.json() == {
        "error": "body_too_large",
        "detail": "the request body is over the limit of 1,000 bytes; send a smaller picture "
                  "or raise ITSACAT_MAX_BODY_BYTES (--max-body-bytes)"}
    assert assert_still_serving_small.status_code == 200


def test_body_over_limit_without_length_returns_413(model):
    def chunks():
        for _ in range(10):
            yield b"0" * 500

    with limited_client(model, max_body_bytes=1000) as client:
        response = client.post("/predict", content=chunks())

    assert response.status_code == 413
    assert response.json()["error"] == "body_too_large"


def test_pixel_count_over_limit_returns_413_from_header(model):
    # A flat 3000×3000 PNG is a few kilobytes: small on the wire, large once decoded.
    bomb = encoded(np.zeros((3000, 3000, 3), dtype=np.uint8), "PNG")

    with limited_client(model, max_pixels=1_000_000) as client:
        response = client.post("/predict", files={"file": ("flat.png", bomb)})
        assert_still_serving(client)

    assert len(bomb) < 100_000
    assert response.status_code == 413
    assert response.json() == {
        "error": "too_many_pixels",
        "detail": "flat.png: 3000×3000 is 9,000,000 pixels, over the limit of 1,000,000; "
                  "send a smaller picture"}


def test_decompression_bomb_header_returns_413(client, cases):
    bomb = (cases / "bomb_header_65535x65535.png").read_bytes()

    response = client.post("/predict", files={"file": ("bomb.png", bomb)})

    assert response.status_code == 413
    assert response.json()["error"] == "too_many_pixels"
    assert "4,294,836,225 pixels, over the limit of 25,000,000" in response.json()["detail"]
    assert_still_serving(client)


def test_truncated_image_returns_400(client):
    whole = encoded(random_pixels(), "JPEG")

    response = client.post("/predict", files={"file": ("cut.jpg", whole[:len(whole) // 2])})

    assert response.status_code == 400
    assert response.json()["error"] == "undecodable_image"
    assert response.json()["detail"].startswith("cut.jpg: the JPEG image is corrupt or "
                                                "truncated")
    assert_still_serving(client)


def test_truncated_case_file_returns_400(client, cases):
    response = client.post("/predict", files={"file": ("truncated.jpg",
                                                       (cases / "truncated.jpg").read_bytes())})

    assert response.status_code == 400
    assert response.json()["error"] == "undecodable_image"
    assert_still_serving(client)


def test_undecodable_bytes_return_400(client):
    response = client.post("/predict", files={"file": ("notes.jpg", b"these are not pixels")})

    assert response.status_code == 400
    assert response.json() == {
        "error": "undecodable_image",
        "detail": "notes.jpg: not a recognised image format; send one of JPEG, PNG, GIF, WEBP, "
                  "BMP, TIFF"}


@pytest.mark.parametrize("send", ["multipart", "raw"])
def test_empty_upload_returns_400_empty(client, send):
    if send == "multipart":
        response = client.post("/predict", files={"file": ("empty.jpg", b"")})
        name = "empty.jpg"
    else:
        response = client.post("/predict", content=b"")
        name = "request body"

    assert response.status_code == 400
    assert response.json() == {"error": "empty_image",
                               "detail": f"{name}: the image is empty (0 bytes); check that "
                                         "the file or upload is complete"}


def test_unsupported_format_returns_415_naming_it(client):
    ppm = encoded(random_pixels(), "PPM")

    response = client.post("/predict", files={"file": ("cat.png", ppm, "image/png")})

    assert response.status_code == 415
    assert response.json() == {
        "error": "unsupported_format",
        "detail": "cat.png: PPM images are not supported; send one of JPEG, PNG, GIF, WEBP, "
                  "BMP, TIFF"}


def test_heic_named_png_returns_415_naming_heic(client, cases):
    data = (cases / "heic_named_as.png").read_bytes()

    response = client.post("/predict", files={"file": ("photo.png", data, "image/png")})

    assert response.status_code == 415
    assert response.json()["detail"].startswith("photo.png: HEIC images are not supported")


@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF"])
def test_supported_format_with_wrong_name_is_classified(client, image_format):
    # The name and Content-Type claim a format the bytes are not: the content decides.
    data = encoded(random_pixels(), image_format)

    response = client.post("/predict", files={"file": ("picture.heic", data, "image/heic")})

    assert response.status_code == 200
    assert response.json()["model_version"] == 1


def test_lossless_formats_give_identical_predictions(client):
    pixels = random_pixels(6)

    answers = {image_format: client.post("/predict", content=encoded(pixels, image_format)
                                         ).json()["probability"]
               for image_format in ("PNG", "BMP", "TIFF")}

    assert answers["PNG"] == answers["BMP"] == answers["TIFF"]


def test_webp_named_jpg_is_classified(client, cases):
    data = (cases / "valid.webp").read_bytes()

    response = client.post("/predict", files={"file": ("valid.jpg", data, "image/jpeg")})

    assert response.status_code == 200


def test_animated_gif_reports_first_frame_used(client):
    frames = [Image.fromarray(random_pixels(seed)) for seed in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    first_only = io.BytesIO()
    frames[0].save(first_only, format="GIF")

    animated = client.post("/predict", content=buffer.getvalue()).json()
    single = client.post("/predict", content=first_only.getvalue()).json()

    assert animated["frames_used"] == 1
    assert animated["frames_in_source"] == 3
    assert animated["probability"] == single["probability"]
    assert "frames_used" not in single


def test_animated_case_gif_reports_frames(client, cases):
    data = (cases / "animated_first_frame_blank.gif").read_bytes()

    answer = client.post("/predict", content=data).json()

    assert answer["frames_used"] == 1
    assert answer["frames_in_source"] == 4


def test_exif_rotated_photo_matches_upright(client, cases):
    rotated = client.post("/predict", content=(cases / "exif_rotated_6.jpg").read_bytes())
    upright = client.post("/predict",
                          content=(cases / "exif_upright_reference.jpg").read_bytes())

    assert rotated.status_code == upright.status_code == 200
    assert rotated.json()["label"] == upright.json()["label"]
    assert abs(rotated.json()["probability"] - upright.json()["probability"]) < 0.02


@pytest.mark.parametrize("name", ["gray_L.png", "palette_P_trns.png", "rgba_hidden_green.png",
                                  "cmyk.jpg", "gray16_ramp.png"])
def test_other_image_modes_are_classified(client, cases, name):
    response = client.post("/predict", files={"file": (name, (cases / name).read_bytes())})

    assert response.status_code == 200


def test_multipart_without_file_returns_400(client):
    response = client.post("/predict", data={"caption": "a cat"},
                           files={"empty": ("", b"", "text/plain")})
    fields_only = client.post("/predict", data={"caption": "a cat"},
                              headers={"Content-Type": "multipart/form-data; boundary=x"})

    assert response.status_code == 400
    assert response.json()["error"] == "missing_image"
    assert fields_only.status_code == 400
    assert fields_only.json()["error"] == "missing_image"


def test_invalid_json_returns_400(client):
    response = client.post("/predict", content=b"{not json",
                           headers={"Content-Type": "application/json"})

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_json"


def test_json_without_url_returns_400(client):
    response = client.post("/predict", json={"link": "https://example.org/cat.jpg"})

    assert response.status_code == 400
    assert response.json() == {
        "error": "missing_image",
        "detail": "the JSON body has no \"url\" string; send the picture as a multipart file "
                  "field named 'file', as the raw request body, or as JSON "
                  "{\"url\": \"https://…\"}"}
