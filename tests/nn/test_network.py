import json

import numpy as np
import pytest

from itsacat.nn import (
    ACTIVATIONS,
    Parameters,
    backward,
    cost,
    cross_entropy,
    forward,
    initialize,
    output_delta,
    parse_spec,
)
from itsacat.nn.gradcheck import gradient_check
from tests.conftest import SMALL_SPEC


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_backward_every_activation_matches_finite_differences(activation):
    rng = np.random.default_rng(4)
    spec = parse_spec(SMALL_SPEC | {
        "activations": {"layer1": activation, "layer2": activation, "layer3": "sigmoid"}})
    params = initialize(spec, n_x=6)
    # Keep pre-activations away from the ReLU kink, where the derivative is undefined.
    X = rng.uniform(0.2, 1.0, size=(6, 9))
    Y = (rng.random((1, 9)) > 0.5).astype(float)

    assert gradient_check(params, X, Y, spec.activations) < 1e-7


def test_backward_wrong_derivative_is_caught_by_gradient_check():
    rng = np.random.default_rng(4)
    spec = parse_spec(SMALL_SPEC | {
        "activations": {"layer1": "tanh", "layer2": "tanh", "layer3": "sigmoid"}})
    params = initialize(spec, n_x=6)
    X, Y = rng.uniform(size=(6, 9)), (rng.random((1, 9)) > 0.5).astype(float)
    original = ACTIVATIONS["tanh"]
    try:
        ACTIVATIONS["tanh"] = original.__class__("tanh", np.tanh, lambda Z: 1 - np.tanh(Z),
                                                 1.0)
        assert gradient_check(params, X, Y, spec.activations) > 1e-3
    finally:
        ACTIVATIONS["tanh"] = original


def test_forward_backward_hand_worked_network():
    # One relu neuron feeding one sigmoid neuron, two examples, worked out by hand:
    # x = [1, 2] and [0, 1] (two inputs), W1 = [0.5, -0.25], b1 = 0.1
    #   z1 = 0.5*1 - 0.25*2 + 0.1 = 0.1  and  0 - 0.25 + 0.1 = -0.15 → a1 = [0.1, 0]
    # W2 = [2], b2 = -0.2: z2 = [0.0, -0.2], a2 = [0.5, sigmoid(-0.2)]
    params = Parameters({1: np.array([[0.5, -0.25]]), 2: np.array([[2.0]])},
                        {1: np.array([[0.1]]), 2: np.array([[-0.2]])})
    X = np.array([[1.0, 0.0], [2.0, 1.0]])
    Y = np.array([[1.0, 0.0]])
    sigmoid_minus = 1 / (1 + np.exp(0.2))

    AL, caches = forward(params, X, ("relu", "sigmoid"))
    grads = backward(params, caches, AL, Y, ("relu", "sigmoid"))

    np.testing.assert_allclose(caches[0].Z, [[0.1, -0.15]])
    np.testing.assert_allclose(AL, [[0.5, sigmoid_minus]])
    expected_cost = -(np.log(0.5) + np.log(1 - sigmoid_minus)) / 2
    assert cost(caches[1].Z, Y) == pytest.approx(expected_cost, rel=1e-12)
    # dZ2 = a2 - y = [-0.5, s]; dW2 = dZ2·a1ᵀ/2 = (-0.5*0.1 + s*0)/2 = -0.025
    np.testing.assert_allclose(grads.dW[2], [[-0.025]])
    np.testing.assert_allclose(grads.db[2], [[(-0.5 + sigmoid_minus) / 2]])
    # dZ1 = W2ᵀ·dZ2 ⊙ relu′(z1) = [2*-0.5*1, 2*s*0] = [-1, 0]; dW1 = dZ1·xᵀ/2 = [-0.5, -1]
    np.testing.assert_allclose(grads.dW[1], [[-0.5, -1.0]])
    np.testing.assert_allclose(grads.db[1], [[-0.5]])


def test_sigmoid_extreme_inputs_are_finite_without_warnings(cases):
    case = json.loads((cases / "sigmoid_extreme_inputs.json").read_text())
    z = np.array(case["z"])
    with np.errstate(all="raise"):
        a = ACTIVATIONS["sigmoid"].forward(z)
        relu = ACTIVATIONS["relu"].forward(z)
        relu_gradient = ACTIVATIONS["relu"].derivative(z)
        sigmoid_gradient = ACTIVATIONS["sigmoid"].derivative(z)
        logit_cost = cost(z.reshape(1, -1), np.ones((1, len(z))))

    np.testing.assert_allclose(a, case["expected_sigmoid"], rtol=1e-12, atol=1e-300)
    assert np.all((a >= 0) & (a <= 1))
    assert np.isfinite(relu).all()
    assert np.isfinite(relu_gradient).all()
    assert np.isfinite(sigmoid_gradient).all()
    assert np.isfinite(logit_cost)


def test_cross_entropy_saturated_predictions_are_finite(cases):
    case = json.loads((cases / "cross_entropy_saturated.json").read_text())
    A, Y = np.array([case["A_hat"]]), np.array([case["Y"]], dtype=float)
    with np.errstate(all="raise"):
        total = cross_entropy(A, Y)
        per_example = [cross_entropy(A[:, [i]], Y[:, [i]]) for i in range(A.shape[1])]
        dZ = output_delta(A, Y)

    assert np.isfinite(total)
    assert total > 0
    assert min(per_example[2], per_example[3]) > 30 * max(per_example[0], per_example[1],
                                                          per_example[4])
    assert np.isfinite(dZ).all()


def test_cost_from_logits_equals_cost_from_probabilities():
    rng = np.random.default_rng(0)
    Z = rng.normal(scale=3, size=(1, 50))
    Y = (rng.random((1, 50)) > 0.5).astype(float)
    assert cost(Z, Y) == pytest.approx(cross_entropy(1 / (1 + np.exp(-Z)), Y), rel=1e-10)


def test_initialize_same_seed_same_weights_and_scales():
    spec = parse_spec(SMALL_SPEC | {"neurons": {"layer1": 400, "layer2": 3, "layer3": 1}})
    first, second = initialize(spec, 1000), initialize(spec, 1000)
    assert first.max_abs_difference(second) == 0.0
    # He initialisation: std(W1) = sqrt(2 / fan-in); biases start at zero.
    assert np.std(first.W[1]) == pytest.approx(np.sqrt(2 / 1000), rel=0.02)
    assert np.std(first.W[2]) == pytest.approx(np.sqrt(2 / 400), rel=0.2)
    assert not any(first.b[l].any() for l in first.b)
    assert initialize(spec.with_overrides(seed=2), 1000).max_abs_difference(first) > 0


def test_initialize_float32_spec_gives_float32_weights():
    spec = parse_spec(SMALL_SPEC | {"dtype": "float32"})
    params = initialize(spec, 10)
    assert {params.W[l].dtype for l in params.W} == {np.dtype("float32")}
    assert {params.b[l].dtype for l in params.b} == {np.dtype("float32")}
