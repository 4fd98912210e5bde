"""Shared builders for the crnn.ops tests: random problems and the reference call."""

import numpy as np

from crnn import ops, reference

GATES = {"lstm": 4, "gru": 3, "simple_rnn": 1}
N_STATES = {"lstm": 2, "gru": 1, "simple_rnn": 1}
TOLERANCE = {np.float64: 1e-10, np.float32: 2e-5}


def make_problem(cell, rng, batch=3, timesteps=5, features=4, units=3, dtype=np.float64,
                 use_bias=True, reset_after=True, masked=False, scale=0.5):
    """Random weights, inputs, non-zero initial states and (optionally) a gappy mask."""
    gates = GATES[cell] * units

    def normal(*shape, s=1.0):
        return (rng.standard_normal(shape) * s).astype(dtype)

    bias_shape = (2, gates) if (cell == "gru" and reset_after) else (gates,)
    mask = None
    if masked:
        mask = rng.random((batch, timesteps)) > 0.35
        mask[0, : min(2, timesteps)] = False      # leading masked steps: zero outputs
        if batch > 1 and timesteps > 2:
            mask[1, -1] = False                   # trailing gap
    return dict(
        x=normal(batch, timesteps, features),
        kernel=normal(features, gates, s=scale),
        recurrent_kernel=normal(units, gates, s=scale),
        bias=normal(*bias_shape, s=scale) if use_bias else None,
        initial_state=[normal(batch, units) for _ in range(N_STATES[cell])],
        mask=mask,
    )


def options(cell, go_backwards=False, activation="tanh", recurrent_activation="sigmoid",
            reset_after=True):
    opts = dict(go_backwards=go_backwards, activation=activation)
    if cell != "simple_rnn":
        opts["recurrent_activation"] = recurrent_activation
    if cell == "gru":
        opts["reset_after"] = reset_after
    return opts


def run_ops(cell, problem, opts, training=True):
    return getattr(ops, cell)(problem["x"], problem["kernel"], problem["recurrent_kernel"],
                              problem["bias"], problem["initial_state"], mask=problem["mask"],
                              training=training, **opts)


def run_reference(cell, problem, opts):
    return getattr(reference, f"{cell}_forward")(
        problem["x"], problem["kernel"], problem["recurrent_kernel"], problem["bias"],
        problem["initial_state"], mask=problem["mask"], **opts)


def grad_ops(cell, cache, d_outputs, d_states):
    return getattr(ops, f"{cell}_grad")(cache, d_outputs, d_states)


def grad_reference(cell, tape, d_outputs, d_states):
    return getattr(reference, f"{cell}_backward")(tape, d_outputs, d_states)


def check_gradients(cell, cache, tape, outputs, states, rng, close, what):
    """Random gradients of the outputs and final states through crnn.ops (``cache``) and
    the reference (``tape``): every gradient must pass ``close(actual, expected, what)``."""
    d_out = rng.standard_normal(outputs.shape).astype(outputs.dtype)
    d_states = [rng.standard_normal(s.shape).astype(outputs.dtype) for s in states]
    grads = grad_ops(cell, cache, d_out, d_states)
    expected = grad_reference(cell, tape, d_out, d_states)
    for name in ("dx", "d_kernel", "d_recurrent_kernel", "d_bias"):
        close(getattr(grads, name), expected[name], f"{what} {name}")
    for a, b in zip(grads.d_initial_state, expected["d_initial_state"]):
        close(a, b, what + " d_initial_state")
