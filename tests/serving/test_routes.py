"""The service's routes, in process: reference routes, predictions, health, metrics, docs."""

from __future__ import annotations

import io
import logging

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from itsacat.serving import ServingSettings, create_app
from itsacat.serving.swap import StaticSource

from .conftest import make_model, served


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def random_pixels(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(64, 64, 3), dtype=np.uint8)


def expected_probability(model, pixels: np.ndarray) -> float:
    """The oracle: the network on the pixels scaled by 1/255, without the service."""
    return float(model.predict_proba(pixels.reshape(-1, 1) / 255.0)[0])


def test_ping_returns_reference_text(client):
    response = client.get("/")

    assert response.status_code == 200
    assert response.text == "Ping Successful!"


def test_predict_multipart_file_returns_prediction(client, model):
    pixels = random_pixels()

    response = client.post("/predict", files={"file": ("cat.png", png_bytes(pixels))})

    assert response.status_code == 200
    answer = response.json()
    probability = expected_probability(model, pixels)
    assert answer == {"label": "cat" if probability > 0.5 else "non-cat",
                      "probability": answer["probability"], "model_version": 1,
                      "slot": "blue"}
    assert abs(answer["probability"] - probability) < 1e-12


def test_predict_raw_body_matches_multipart(client):
    data = png_bytes(random_pixels(1))

    raw = client.post("/predict", content=data, headers={"Content-Type": "image/png"})
    multipart = client.post("/predict", files={"file": ("x.png", data)})

    assert raw.status_code == 200
    assert raw.json() == multipart.json()


def test_predict_multipart_other_field_name_uses_first_file(client):
    data = png_bytes(random_pixels(2))

    response = client.post("/predict", files={"picture": ("x.png", data)})

    assert response.status_code == 200
    assert response.json() == client.post("/predict", content=data).json()


def test_predict_before_model_loaded_returns_503():
    app = create_app(ServingSettings(slot="green"), StaticSource(None))
    with TestClient(app) as client:
        response = client.post("/predict", content=png_bytes(random_pixels()))
        ready = client.get("/readyz")
        health = client.get("/healthz")

    message = ("slot green has no verified model loaded yet; retry once /readyz returns 200")
    assert response.status_code == 503
    assert response.json() == {"error": "model_not_ready", "detail": message}
    assert ready.status_code == 503
    assert ready.json() == {"error": "model_not_ready", "detail": message}
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "slot": "green"}


def test_readyz_with_model_returns_version(client):
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ready", "slot": "blue", "model_version": 1,
                               "artifact_sha256": "0" * 64}


def test_metrics_count_requests_predictions_and_version(client):
    pixels = random_pixels(3)
    label = client.post("/predict", content=png_bytes(pixels)).json()["label"]
    client.post("/predict", content=b"")

    text = client.get("/metrics").text

    assert 'itsacat_http_requests_total{method="POST",route="/predict",status="200"} 1.0' in text
    assert 'itsacat_http_requests_total{method="POST",route="/predict",status="400"} 1.0' in text
    assert f'itsacat_predictions_total{{label="{label}",model_version="1"}} 1.0' in text
    assert 'itsacat_model_version{slot="blue"} 1.0' in text
    assert 'itsacat_http_request_duration_seconds_count{route="/predict"} 2.0' in text
    assert 'itsacat_model_swaps_total{outcome="swapped"} 1.0' in text


def test_metrics_unknown_paths_share_one_route_label(client):
    client.get("/no/such/path")
    client.get("/another/one")

    text = client.get("/metrics").text

    assert 'itsacat_http_requests_total{method="GET",route="other",status="404"} 2.0' in text


def test_unknown_route_returns_json_404(client):
    response = client.get("/nowhere")

    assert response.status_code == 404
    assert response.json() == {"error": "not_found",
                               "detail": "GET /nowhere is not a route of this service; see "
                                         "/docs"}


def test_wrong_method_returns_json_405(client):
    response = client.get("/predict")

    assert response.status_code == 405
    assert response.json() == {"error": "method_not_allowed",
                               "detail": "GET is not allowed on /predict; see /docs"}


def test_image_page_without_url_returns_422(client):
    response = client.get("/image")

    assert response.status_code == 422
    assert response.json() == {"error": "invalid_request", "detail": "query image: Field "
                                                                     "required"}


def test_upload_page_has_file_form(client):
    response = client.get("/upload")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<input type="file" name="file"' in response.text
    assert "Slot <strong>blue</strong>, model <strong>v1</strong>" in response.text


def test_openapi_documents_the_three_request_forms(client):
    document = client.get("/openapi.json").json()
    docs = client.get("/docs")

    content = document["paths"]["/predict"]["post"]["requestBody"]["content"]
    assert set(content) == {"multipart/form-data", "image/*", "application/octet-stream",
                            "application/json"}
    assert set(document["paths"]) >= {"/", "/predict", "/image", "/healthz", "/readyz",
                                      "/metrics", "/upload"}
    assert docs.status_code == 200


def test_request_log_has_one_line_per_request(client, caplog):
    caplog.set_level(logging.INFO, logger="itsacat.serving.requests")

    client.post("/predict", content=png_bytes(random_pixels()))
    client.get("/healthz")

    lines = [record.getMessage() for record in caplog.records
             if record.name == "itsacat.serving.requests"]
    assert len(lines) == 2
    assert lines[0].startswith("POST /predict 200 ")
    assert lines[0].endswith(" ms")
    assert lines[1].startswith("GET /healthz 200 ")
    assert lines[1].endswith(" ms")


def test_predict_grumpy_cat_photo_returns_prediction(client, shared_data):
    photo = (shared_data / "images" / "grumpy_cat.jpeg").read_bytes()

    response = client.post("/predict", files={"file": ("grumpy_cat.jpeg", photo)})

    assert response.status_code == 200
    answer = response.json()
    assert answer["label"] in ("cat", "non-cat")
    assert 0.0 <= answer["probability"] <= 1.0
    assert answer["model_version"] == 1


def test_predict_uses_model_class_names():
    model = make_model(seed=4)
    model.class_names = ("dog", "hotdog")
    app = create_app(ServingSettings(slot="blue"), StaticSource(served(model, 7)))
    pixels = random_pixels(5)

    with TestClient(app) as client:
        answer = client.post("/predict", content=png_bytes(pixels)).json()

    probability = expected_probability(model, pixels)
    assert answer["label"] == ("hotdog" if probability > 0.5 else "dog")
    assert answer["model_version"] == 7
