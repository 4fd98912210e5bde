"""Accuracy of the vectorized float32 activations (crnn/_fastmath.h).

They are reached through a one-step SimpleRNN with kernel 1, no recurrence and no bias, so
each output is exactly activation(x) for one input value.
"""

import numpy as np
import pytest
from scipy.special import expit

from crnn import ops


def _apply(activation, values):
    x = np.asarray(values, np.float32).reshape(-1, 1, 1)
    outputs, _, _ = ops.simple_rnn(x, np.ones((1, 1), np.float32), np.zeros((1, 1), np.float32),
                                   activation=activation)
    return outputs.ravel()


EXACT = {
    "tanh": np.tanh,
    "sigmoid": expit,
}


@pytest.mark.parametrize("activation", sorted(EXACT))
def test_float32_activation_is_within_a_few_ulp(activation):
    values = np.concatenate([np.linspace(-30, 30, 200_001), np.geomspace(1e-30, 1.0, 2_001),
                             -np.geomspace(1e-30, 1.0, 2_001)]).astype(np.float32)
    got = _apply(activation, values)
    exact = EXACT[activation](values.astype(np.float64))
    rel = np.abs(got - exact) / np.maximum(np.abs(exact), np.finfo(np.float32).tiny)
    # float32 epsilon is 1.19e-7: within about 2 ulp everywhere
    assert rel.max() < 3e-7, f"max relative error {rel.max():.3g} at x={values[rel.argmax()]}"


@pytest.mark.parametrize("activation", sorted(EXACT))
def test_float32_activation_saturates_cleanly(activation):
    big = np.array([-1e30, -1e4, -100.0, -88.0, 88.0, 100.0, 1e4, 1e30], np.float32)
    got = _apply(activation, big)
    exact = EXACT[activation](big.astype(np.float64))
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, exact, rtol=0, atol=1e-30 if activation == "sigmoid" else 0)
    np.testing.assert_array_equal(_apply(activation, [0.0]), [0.0 if activation == "tanh" else 0.5])


def test_float32_tanh_is_odd_and_sigmoid_symmetric():
    v = np.linspace(0.0, 20.0, 4001).astype(np.float32)
    np.testing.assert_array_equal(_apply("tanh", -v), -_apply("tanh", v))
    np.testing.assert_allclose(_apply("sigmoid", v) + _apply("sigmoid", -v), 1.0, atol=2e-7)
