"""`itsacat predict`: classify pictures with a saved model."""

from __future__ import annotations

import sys

from itsacat.cli.common import print_json
from itsacat.data import ImageError, load_image_file, to_input_column
from itsacat.nn.io import load_model


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "predict", help="classify pictures with a saved model",
        description="Print the predicted label and the probability of the positive class "
                    "for each picture. Example: itsacat predict --model .itsacat/runs/RUN "
                    "cat.jpg dog.png")
    parser.add_argument("--model", required=True,
                        help="folder with params.h5 and parameters.json (a run folder)")
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="picture files")
    parser.add_argument("--json", action="store_true", help="print the predictions as JSON")
    parser.set_defaults(handler=run)


def run(args) -> int:
    model = load_model(args.model)
    predictions, failures = [], 0
    for path in args.images:
        try:
            decoded = load_image_file(path)
        except ImageError as error:
            failures += 1
            predictions.append({"image": path, "error": error.code, "detail": error.message})
            continue
        probability = float(model.predict_proba(to_input_column(decoded.pixels,
                                                                model.spec.dtype))[0])
        label = model.class_names[int(probability > 0.5)]
        predictions.append({"image": path, "label": label, "probability": probability,
                            "frames": decoded.frames})

    if args.json:
        print_json(predictions)
    else:
        for item in predictions:
            if "error" in item:
                print(f"itsacat predict: error: {item['detail']}", file=sys.stderr)
            else:
                print(f"{item['image']}: {item['label']} "
                      f"(p({model.class_names[1]})={item['probability']:.4f})")
    # Like every expected error, a picture that cannot be read exits with status 2.
    return 2 if failures else 0
