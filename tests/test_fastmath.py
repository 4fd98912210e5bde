"""Accuracy of the vectorized float32 and float64 activations (crnn/_kernels/_fastmath.h).

They are reached through a one-step SimpleRNN with kernel 1, no recurrence and no bias, so
each output is exactly activation(x) for one input value.
"""

import numpy as np
import pytest
from scipy.special import expit

from crnn import ops


def _apply(activation, values, dtype=np.float32):
    x = np.asarray(values, dtype).reshape(-1, 1, 1)
    outputs, _, _ = ops.simple_rnn(x, np.ones((1, 1), dtype), np.zeros((1, 1), dtype),
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


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("activation", sorted(EXACT))
def test_nan_in_nan_out(activation, dtype):
    # as NumPy's (and Keras's): a NaN is not clamped into a number, whichever lane of a
    # vector or the tail it falls in
    values = np.linspace(-3, 3, 37).astype(dtype)
    values[[0, 5, 16, 17, 36]] = np.nan
    got = _apply(activation, values, dtype)
    assert np.array_equal(np.isnan(got), np.isnan(values)), got


def test_float32_tanh_is_odd_and_sigmoid_symmetric():
    v = np.linspace(0.0, 20.0, 4001).astype(np.float32)
    np.testing.assert_array_equal(_apply("tanh", -v), -_apply("tanh", v))
    np.testing.assert_allclose(_apply("sigmoid", v) + _apply("sigmoid", -v), 1.0, atol=2e-7)


@pytest.mark.parametrize("activation", sorted(EXACT))
def test_float64_activation_is_within_a_few_ulp(activation):
    values = np.concatenate([np.linspace(-30, 30, 200_001), np.geomspace(1e-300, 1.0, 2_001),
                             -np.geomspace(1e-300, 1.0, 2_001), [0.625, -0.625, 0.0]])
    got = _apply(activation, values, np.float64)
    exact = EXACT[activation](values)
    rel = np.abs(got - exact) / np.maximum(np.abs(exact), np.finfo(np.float64).tiny)
    # float64 epsilon is 2.2e-16: within about 2 ulp everywhere
    assert rel.max() < 5e-16, f"max relative error {rel.max():.3g} at x={values[rel.argmax()]}"


@pytest.mark.parametrize("activation", sorted(EXACT))
def test_float64_activation_saturates_cleanly(activation):
    big = np.array([-1e300, -1e4, -745.0, -709.0, 709.0, 745.0, 1e4, 1e300])
    got = _apply(activation, big, np.float64)
    exact = EXACT[activation](big)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, exact, rtol=1e-15, atol=1e-300)
