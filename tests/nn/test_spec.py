import json

import pytest

from itsacat.nn import SpecError, load_spec, parse_spec
from tests.conftest import SMALL_SPEC


def test_load_spec_reference_file_loads_unchanged(shared_data):
    spec = load_spec(shared_data / "datasets" / "reference_parameters.json")
    assert spec.neurons == (20, 7, 5, 1)
    assert spec.activations == ("relu", "relu", "relu", "sigmoid")
    assert spec.epochs == 2500
    assert spec.learning_rate == 0.0075
    assert spec.batch_size == 64
    assert spec.threshold == 0.0019
    assert (spec.seed, spec.strategy, spec.dtype) == (1, "sequential", "float64")


def test_spec_to_json_round_trip_is_identical():
    spec = parse_spec(SMALL_SPEC | {"seed": 7, "strategy": "average", "dtype": "float32"})
    assert parse_spec(spec.to_json()) == spec


def _error(document) -> str:
    with pytest.raises(SpecError) as caught:
        parse_spec(document, source="p.json")
    return str(caught.value)


def test_parse_spec_learning_rate_string_names_key_and_value(cases):
    document = json.loads((cases / "params_lr_string.json").read_text())
    assert _error(document) == "network spec p.json: learning_rate must be a number, found '1e-3'"


def test_parse_spec_negative_neurons_names_layer(cases):
    document = json.loads((cases / "params_negative_neurons.json").read_text())
    assert _error(document) == ("network spec p.json: neurons.layer2 must be a positive "
                                "integer, found -7")


@pytest.mark.parametrize(("change", "message"), [
    ({"layers": 4}, "layers is 4 but neurons has entries ['layer1', 'layer2', 'layer3']; "
                    "expected exactly ['layer1', 'layer2', 'layer3', 'layer4']"),
    ({"activations": {"layer1": "relu", "layer2": "swish", "layer3": "sigmoid"}},
     "activations.layer2 is 'swish'; expected one of relu, leaky_relu, tanh, sigmoid"),
    ({"neurons": {"layer1": 5, "layer2": 0, "layer3": 1}},
     "neurons.layer2 must be a positive integer, found 0"),
    ({"neurons": {"layer1": 5, "layer2": True, "layer3": 1}},
     "neurons.layer2 must be an integer, found True"),
    ({"learning_rate": 0}, "learning_rate must be positive, found 0"),
    ({"learning_rate": -0.1}, "learning_rate must be positive, found -0.1"),
    ({"batch_size": 0}, "batch_size must be at least 1, found 0"),
    ({"batch_size": 8.5}, "batch_size must be an integer, found 8.5"),
    ({"epochs": True}, "epochs must be an integer, found True"),
    ({"threshold": -1}, "threshold must not be negative, found -1"),
    ({"neurons": {"layer1": 5, "layer2": 3, "layer3": 2}},
     "the output layer (layer3) must be one sigmoid neuron, found 2 sigmoid neuron(s); "
     "binary classification needs a single probability"),
    ({"activations": {"layer1": "relu", "layer2": "relu", "layer3": "tanh"}},
     "the output layer (layer3) must be one sigmoid neuron, found 1 tanh neuron(s); "
     "binary classification needs a single probability"),
    ({"momentum": 0.9}, "unknown key 'momentum'; the keys are epochs, layers, activations, "
                        "neurons, learning_rate, batch_size, threshold, seed, strategy, dtype"),
    ({"strategy": "fastest"}, "strategy is 'fastest'; expected one of sequential, average, "
                              "best_batch"),
    ({"dtype": "float16"}, "dtype is 'float16'; expected one of float32, float64"),
])
def test_parse_spec_bad_value_names_key(change, message):
    assert _error(SMALL_SPEC | change) == f"network spec p.json: {message}"


def test_parse_spec_missing_key_names_it():
    document = dict(SMALL_SPEC)
    del document["threshold"]
    assert _error(document) == "network spec p.json: missing key 'threshold'"


def test_load_spec_nan_literal_is_rejected(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps(SMALL_SPEC).replace('"learning_rate": 0.01',
                                                   '"learning_rate": NaN'))
    with pytest.raises(SpecError, match="NaN is not a valid JSON number; use a finite number"):
        load_spec(path)


def test_load_spec_duplicate_key_is_rejected(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps(SMALL_SPEC)[:-1] + ', "epochs": 9}')
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert str(caught.value) == f"network spec {path}: key 'epochs' appears twice; keep one of them"


def test_load_spec_missing_file_says_what_to_pass(tmp_path):
    with pytest.raises(SpecError) as caught:
        load_spec(tmp_path / "absent.json")
    assert str(caught.value) == (f"network spec {tmp_path / 'absent.json'}: file not found; "
                                 "pass --params with the path of a parameters.json file")


def test_load_spec_invalid_json_names_line(tmp_path):
    path = tmp_path / "p.json"
    path.write_text('{"epochs": 5,\n "layers": }')
    with pytest.raises(SpecError, match=r"invalid JSON at line 2 column 12"):
        load_spec(path)


def test_with_overrides_validates_again():
    spec = parse_spec(SMALL_SPEC)
    assert spec.with_overrides(seed=3, epochs=None).seed == 3
    with pytest.raises(SpecError, match="epochs must be at least 1, found 0"):
        spec.with_overrides(epochs=0)
