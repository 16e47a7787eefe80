"""A prediction service written the naive way, as the baseline of `serve_speed.py`.

Every request reloads the model file and the network spec from disk, decodes the upload with
Pillow, and renders the picture with its prediction through matplotlib, as a first
Flask-style port of the reference API would. It is correct, only slow.

    python bench/naive_service.py --model FOLDER --port 8001
"""

from __future__ import annotations

import argparse
import base64
import io

import numpy as np
import uvicorn
from fastapi import FastAPI, UploadFile
from matplotlib.figure import Figure
from PIL import Image

from itsacat.nn.io import load_model


def build_app(model_folder: str) -> FastAPI:
    app = FastAPI()

    @app.post("/predict")
    def predict(file: UploadFile) -> dict:
        model = load_model(model_folder)
        picture = Image.open(io.BytesIO(file.file.read())).convert("RGB").resize((64, 64))
        pixels = np.asarray(picture)
        probability = float(model.predict_proba(pixels.reshape(-1, 1) / 255.0)[0])
        label = model.class_names[int(probability > 0.5)]

        # A Figure of its own per request: pyplot's global state is not thread-safe, and
        # FastAPI runs this sync route in a thread pool.
        figure = Figure(figsize=(3, 3))
        axes = figure.subplots()
        axes.imshow(pixels)
        axes.set_title(f"{label} ({probability:.3f})")
        rendered = io.BytesIO()
        figure.savefig(rendered, format="png")
        return {"label": label, "probability": probability,
                "picture": base64.b64encode(rendered.getvalue()).decode("ascii")}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model folder")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(build_app(args.model), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
