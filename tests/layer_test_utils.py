"""Shared checks for every crnn layer (imported by tests/test_layers.py).

``run_layer_test`` checks, for one layer configuration:

1. the output shape of a call on random data, and ``compute_output_shape``;
2. the number of weight arrays and of parameters;
3. the config round trip: a layer rebuilt from ``get_config`` with the same weights
   gives identical outputs and an identical config;
4. one training step: ``backward``'s gradients match central finite differences (in
   float64) of the functional ``L = sum(R * outputs)``, and an SGD step along them lowers
   a squared-error loss.
"""

import numpy as np

from crnn import layers as L

_DEFAULT_INPUT = {"float": lambda rng, shape: rng.standard_normal(shape),
                  "int": lambda rng, shape: rng.integers(0, 5, size=shape)}


def _fresh(layer):
    return L.deserialize(L.serialize(layer))


def _reset(layer):
    # A stateful layer would start each evaluation from the previous one's states.
    if getattr(layer, "stateful", False):
        layer.reset_states()


def _forward_loss(layer, x, r, mask=None):
    _reset(layer)
    y, _ = layer.forward(x, training=False, mask=mask)
    return float(np.sum(r * y))


def check_gradients(layer, x, mask=None, n_entries=6, seed=0, check_input=True):
    """Compare ``layer.backward`` with central differences (layer must be float64)."""
    rng = np.random.default_rng(seed)
    _reset(layer)
    y, cache = layer.forward(x, training=True, mask=mask)
    r = rng.standard_normal(y.shape)
    dx, grads = layer.backward(cache, r)
    assert len(grads) == len(layer.trainable_weights)
    eps = 1e-6
    pairs = list(zip(layer.trainable_weights, grads))
    if check_input:
        pairs.append((x, dx))
    for target, grad in pairs:
        if hasattr(grad, "to_dense"):  # Embedding's sparse rows (crnn.optimizers.IndexedSlices)
            grad = grad.to_dense()
        assert grad.shape == target.shape
        flat = target.reshape(-1)
        for index in rng.choice(flat.size, size=min(n_entries, flat.size), replace=False):
            saved = flat[index]
            flat[index] = saved + eps
            plus = _forward_loss(layer, x, r, mask)
            flat[index] = saved - eps
            minus = _forward_loss(layer, x, r, mask)
            flat[index] = saved
            numeric = (plus - minus) / (2 * eps)
            analytic = grad.reshape(-1)[index]
            assert abs(numeric - analytic) <= 1e-6 + 1e-5 * abs(numeric), \
                (layer.name, index, numeric, analytic)


def run_layer_test(make_layer, input_shape, expected_output_shape, expected_num_weights,
                   expected_num_params=None, input_kind="float", seed=0, grad_check=True):
    """Run the four shared checks on ``make_layer(**kwargs)``.

    Args:
        make_layer: callable ``make_layer(dtype)`` returning a fresh layer.
        input_shape: full input shape, batch first.
        expected_output_shape: full output shape.
        expected_num_weights: number of arrays in ``get_weights()``.
        expected_num_params: total parameter count, if given.
        input_kind: ``"float"`` or ``"int"`` (Embedding).
    """
    rng = np.random.default_rng(seed)
    x = _DEFAULT_INPUT[input_kind](rng, input_shape)
    x32 = x.astype("float32") if input_kind == "float" else x

    # 1. shapes
    layer = make_layer("float32")
    y = layer(x32)
    _reset(layer)
    assert y.shape == tuple(expected_output_shape)
    assert y.dtype == np.float32
    assert tuple(layer.compute_output_shape(tuple(input_shape))) == tuple(expected_output_shape)

    # 2. weights
    weights = layer.get_weights()
    assert len(weights) == expected_num_weights
    if expected_num_params is not None:
        assert layer.count_params() == expected_num_params
    assert all(w.dtype == np.float32 for w in weights)

    # 3. config round trip
    clone = _fresh(layer)
    assert clone.get_config() == layer.get_config()
    clone.build(tuple(input_shape))
    clone.set_weights(weights)
    _reset(clone)
    np.testing.assert_array_equal(clone(x32), y)

    # 4. one training step, in float64 so finite differences are accurate
    layer64 = make_layer("float64")
    layer64.build(tuple(input_shape))
    layer64.set_weights([w.astype("float64") for w in weights])
    x64 = x.astype("float64") if input_kind == "float" else x
    if grad_check:
        check_gradients(layer64, x64, check_input=input_kind == "float", seed=seed)
    if layer64.trainable_weights:
        target = rng.standard_normal(expected_output_shape)

        def loss():
            _reset(layer64)
            out, _ = layer64.forward(x64, training=True)
            return 0.5 * float(np.sum((out - target) ** 2)), out

        before, out = loss()
        _reset(layer64)
        _, cache = layer64.forward(x64, training=True)
        _, grads = layer64.backward(cache, out - target)
        for w, g in zip(layer64.trainable_weights, grads):
            w -= 1e-3 * (g.to_dense() if hasattr(g, "to_dense") else g)
        after, _ = loss()
        assert after < before
    return layer
