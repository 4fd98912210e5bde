"""crnn.ops (and crnn.reference) against golden values computed by Keras 3 and PyTorch.

The values live in tests/golden/ops_golden.npz, written once by
tests/golden/make_ops_golden.py (see tests/golden/README.md); neither Keras, TensorFlow
nor PyTorch is needed here. Each case holds inputs, weights in Keras's layout, random non-zero
initial states, an optional mask, the outputs and final states, and the gradients of
``L = sum(W_o * outputs) + sum(W_h * h) (+ sum(W_c * c))`` with respect to everything.
"""

import json
import os

import numpy as np
import pytest

import crnn
from crnn import reference

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden", "ops_golden.npz")
# Relative to the largest magnitude of the expected array (at least 1).
TOLERANCE = {"float64": 1e-9, "float32": 2e-5}


def _load():
    with np.load(GOLDEN, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    meta = json.loads(str(arrays.pop("__meta__")))
    cases = {}
    for name, options in meta["cases"].items():
        prefix = name + "/"
        case = {key[len(prefix):]: value for key, value in arrays.items()
                if key.startswith(prefix)}
        cases[name] = (options, case)
    return cases


CASES = _load()


def _state_names(cell):
    return ["h", "c"] if cell == "lstm" else ["h"]


def _call_options(options, case):
    kwargs = dict(go_backwards=options["go_backwards"], mask=case.get("mask"),
                  activation=options["activation"])
    if options["cell"] != "simple_rnn":
        kwargs["recurrent_activation"] = options["recurrent_activation"]
    if options["cell"] == "gru":
        kwargs["reset_after"] = options["reset_after"]
    return kwargs


def _run_ops(options, case):
    """Forward and backward through crnn.ops; returns (outputs, finals, gradient dict)."""
    cell = options["cell"]
    states = _state_names(cell)
    forward = getattr(crnn.ops, cell)
    backward = getattr(crnn.ops, cell + "_grad")
    outputs, finals, cache = forward(
        case["x"], case["kernel"], case["recurrent_kernel"], case.get("bias"),
        [case[s + "0"] for s in states], training=True, **_call_options(options, case))
    grads = backward(cache, case["W_o"], [case["W_" + s] for s in states])
    return outputs, finals, dict(dx=grads.dx, d_initial_state=grads.d_initial_state,
                                 d_kernel=grads.d_kernel,
                                 d_recurrent_kernel=grads.d_recurrent_kernel,
                                 d_bias=grads.d_bias)


def _run_reference(options, case):
    cell = options["cell"]
    states = _state_names(cell)
    forward = getattr(reference, cell + "_forward")
    backward = getattr(reference, cell + "_backward")
    outputs, finals, tape = forward(
        case["x"], case["kernel"], case["recurrent_kernel"], case.get("bias"),
        [case[s + "0"] for s in states], **_call_options(options, case))
    grads = backward(tape, case["W_o"], [case["W_" + s] for s in states])
    return outputs, finals, grads


def _assert_close(what, actual, expected, dtype):
    assert actual is not None, f"{what}: got None"
    actual = np.asarray(actual)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    scale = max(1.0, float(np.max(np.abs(expected))))
    tol = TOLERANCE[dtype] * scale
    np.testing.assert_allclose(actual, expected, rtol=0, atol=tol, err_msg=what)


def _check(options, case, outputs, finals, grads, bias_free_grad_is_none=True):
    dtype = options["dtype"]
    states = _state_names(options["cell"])
    _assert_close("outputs", outputs, case["outputs"], dtype)
    assert len(finals) == len(states)
    for k, s in enumerate(states):
        _assert_close(f"final state {s}", finals[k], case[s], dtype)
        _assert_close(f"d_initial_state[{k}] ({s}0)", grads["d_initial_state"][k],
                      case["d_" + s + "0"], dtype)
    _assert_close("dx", grads["dx"], case["d_x"], dtype)
    _assert_close("d_kernel", grads["d_kernel"], case["d_kernel"], dtype)
    _assert_close("d_recurrent_kernel", grads["d_recurrent_kernel"],
                  case["d_recurrent_kernel"], dtype)
    if "bias" in case:
        _assert_close("d_bias", grads["d_bias"], case["d_bias"], dtype)
    elif bias_free_grad_is_none:
        # crnn.ops documents d_bias=None when the forward pass had no bias.
        assert grads["d_bias"] is None


@pytest.mark.parametrize("name", sorted(CASES))
def test_ops_match_golden(name):
    options, case = CASES[name]
    outputs, finals, grads = _run_ops(options, case)
    assert outputs.dtype == case["x"].dtype
    assert all(f.dtype == case["x"].dtype for f in finals)
    _check(options, case, outputs, finals, grads)


@pytest.mark.parametrize("name", sorted(CASES))
def test_reference_matches_golden(name):
    # The reference is the ground truth of the other kernel tests, so it is itself held
    # to the independent implementations.
    options, case = CASES[name]
    outputs, finals, grads = _run_reference(options, case)
    # Without a bias the reference still returns the gradient for a zero bias; not checked.
    _check(options, case, outputs, finals, grads, bias_free_grad_is_none=False)


def test_ops_inference_mode_matches_golden_forward():
    # training=False takes the path that keeps nothing; it must give the same numbers.
    for name, (options, case) in CASES.items():
        cell = options["cell"]
        states = _state_names(cell)
        outputs, finals, cache = getattr(crnn.ops, cell)(
            case["x"], case["kernel"], case["recurrent_kernel"], case.get("bias"),
            [case[s + "0"] for s in states], **_call_options(options, case))
        assert cache is None
        _assert_close(f"{name} outputs", outputs, case["outputs"], options["dtype"])
        for k, s in enumerate(states):
            _assert_close(f"{name} {s}", finals[k], case[s], options["dtype"])


def test_golden_data_covers_every_option():
    # Guards against a regeneration that silently drops coverage.
    seen = set()
    for options, case in CASES.values():
        cell = options["cell"]
        seen.add((cell, options["source"]))
        seen.add((cell, "dtype", options["dtype"]))
        seen.add((cell, "activation", options["activation"]))
        if options["go_backwards"]:
            seen.add((cell, "go_backwards"))
        if "mask" in case:
            seen.add((cell, "mask"))
            if options["go_backwards"]:
                seen.add((cell, "mask+go_backwards"))
            if np.any(~case["mask"][:, 0] & case["mask"].any(axis=1)):
                seen.add((cell, "mask starts masked"))
        if "bias" not in case:
            seen.add((cell, "no bias"))
        if options["recurrent_activation"] == "hard_sigmoid":
            seen.add((cell, "hard_sigmoid"))
        if cell == "gru":
            seen.add((cell, "reset_after", options["reset_after"]))
        for s in _state_names(cell):
            assert np.all(case[s + "0"] != 0), "initial states must be non-zero"
    for cell in ("lstm", "gru", "simple_rnn"):
        expected = {(cell, "keras"), (cell, "torch"), (cell, "dtype", "float32"),
                    (cell, "dtype", "float64"), (cell, "go_backwards"), (cell, "mask"),
                    (cell, "mask+go_backwards"), (cell, "mask starts masked"),
                    (cell, "no bias")}
        expected |= {(cell, "activation", a) for a in ("tanh", "relu", "linear", "sigmoid")}
        if cell != "simple_rnn":
            expected.add((cell, "hard_sigmoid"))
        assert expected <= seen, f"missing for {cell}: {sorted(expected - seen, key=str)}"
    assert {("gru", "reset_after", True), ("gru", "reset_after", False)} <= seen
