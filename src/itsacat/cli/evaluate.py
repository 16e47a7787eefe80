"""`itsacat evaluate`: metrics of a saved model on a data set."""

from __future__ import annotations

from itsacat.cli.common import print_json
from itsacat.cli.train import add_data_arguments
from itsacat.data import load_dataset
from itsacat.nn.io import load_model
from itsacat.report.metrics import evaluate_predictions

ROWS = [("accuracy", "accuracy"), ("sensitivity", "sensitivity"),
        ("specificity", "specificity"), ("false positive rate", "false_positive_rate"),
        ("precision", "precision"), ("F1", "f1")]


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="measure a saved model on a data set",
        description="Print accuracy, the confusion matrix and the derived rates of a model on "
                    "the train and test splits. Example: itsacat evaluate --model "
                    ".itsacat/runs/RUN --data datasets.h5")
    parser.add_argument("--model", required=True,
                        help="folder with params.h5 and parameters.json (a run folder)")
    add_data_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")
    parser.set_defaults(handler=run)


def run(args) -> int:
    model = load_model(args.model)
    dataset = load_dataset(args.data, args.test_data, test_ratio=args.test_ratio)
    metrics = {split: evaluate_predictions(model.predict(getattr(dataset, split).X()),
                                           getattr(dataset, split).y)
               for split in ("train", "test")}
    if args.json:
        print_json({split: m.to_json() for split, m in metrics.items()})
        return 0

    print(f"{'':22}{'train':>10}{'test':>10}")
    for title, field in ROWS:
        print(f"{title:22}{getattr(metrics['train'], field):>10.4f}"
              f"{getattr(metrics['test'], field):>10.4f}")
    for split, m in metrics.items():
        print(f"{split} confusion matrix: TN {m.tn}  FP {m.fp}  FN {m.fn}  TP {m.tp}")
    print(f"mislabeled test images: {list(metrics['test'].mislabeled)}")
    return 0
