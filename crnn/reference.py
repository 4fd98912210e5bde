"""Pure-NumPy reference of the recurrent maths: the ground truth for tests and docs.

Readable first, slow on purpose: one Python loop over timesteps, whole-batch NumPy
expressions inside it. The compiled kernels (``crnn/_kernels/_lstm.pyx``, ``_gru.pyx``,
``_simple_rnn.pyx``) compute exactly this and are tested against it.

Notation, per processing step ``s`` reading input timestep ``t``
(``t = s``, or ``t = T - 1 - s`` with ``go_backwards``):

    x_t        (B, F)   input at timestep t
    h_tm1      (B, U)   hidden state before the step (``c_tm1`` likewise for LSTM)
    z          (B, G*U) gate pre-activations, G = 4 (LSTM), 3 (GRU), 1 (SimpleRNN)
    m          (B, 1)   the mask at (b, t); a masked step keeps the states and repeats
                        the previous output (zeros before a sample's first unmasked step)
    out[:, s]  (B, U)   the step's output, stored in processing order as Keras does

Weights use Keras 3's layout: ``kernel`` (F, G*U), ``recurrent_kernel`` (U, G*U),
``bias`` (G*U,) or, for GRU with ``reset_after=True``, (2, 3*U) (input row, recurrent row).
Gate order: LSTM i, f, c, o; GRU z, r, h.

Each ``*_forward`` returns ``(outputs, final_states, tape)``; ``*_backward(tape, d_outputs,
d_final_states)`` returns a dict with ``dx``, ``d_initial_state`` (list), ``d_kernel``,
``d_recurrent_kernel`` and ``d_bias``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import ArrayLike

__all__ = [
    "ACTIVATIONS",
    "lstm_forward",
    "lstm_backward",
    "gru_forward",
    "gru_backward",
    "simple_rnn_forward",
    "simple_rnn_backward",
]


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _hard_sigmoid(x):
    # Keras 3: relu6(x + 3) / 6, i.e. clip(x / 6 + 0.5, 0, 1).
    return np.clip(x / 6.0 + 0.5, 0.0, 1.0)


# name -> (function, derivative expressed through the function's output y)
ACTIVATIONS = {
    "tanh": (np.tanh, lambda y: 1.0 - y * y),
    "sigmoid": (_sigmoid, lambda y: y * (1.0 - y)),
    "hard_sigmoid": (_hard_sigmoid, lambda y: ((y > 0) & (y < 1)) / 6.0),
    "relu": (lambda x: np.maximum(x, 0.0), lambda y: (y > 0).astype(y.dtype)),
    "linear": (lambda x: x, lambda y: np.ones_like(y)),
}


def _steps(timesteps, go_backwards):
    """Yield (s, t): processing step and the input timestep it reads."""
    for s in range(timesteps):
        yield s, (timesteps - 1 - s if go_backwards else s)


def _mask_column(mask, t, x):
    """The mask at timestep t as a (B, 1) array of 0/1 in x's dtype."""
    if mask is None:
        return np.ones((x.shape[0], 1), x.dtype)
    return mask[:, t, None].astype(x.dtype)


# --------------------------------------------------------------------------- LSTM


def lstm_forward(x: np.ndarray, kernel: np.ndarray, recurrent_kernel: np.ndarray,
                 bias: np.ndarray | None, initial_state: Sequence[ArrayLike],
                 mask: np.ndarray | None = None, go_backwards: bool = False,
                 activation: str = "tanh", recurrent_activation: str = "sigmoid"
                 ) -> tuple[np.ndarray, list[np.ndarray], dict[str, Any]]:
    """Run an LSTM over whole sequences, in NumPy (the maths of ``crnn.ops.lstm``).

    Nothing is checked: the arrays must already have the shapes of the module notes and
    one float dtype, which the outputs keep.

    Args:
        x: (batch, timesteps, features) array.
        kernel: (features, 4 * units), gates in order i, f, c, o.
        recurrent_kernel: (units, 4 * units).
        bias: (4 * units,), or None for no bias.
        initial_state: ``[h, c]``, each (batch, units); required (pass zeros for none).
        mask: (batch, timesteps) booleans or 0/1, or None (the default) for no mask.
        go_backwards: process the sequence from the last timestep to the first. Defaults
            to False.
        activation: a key of ``ACTIVATIONS``. Defaults to "tanh".
        recurrent_activation: a key of ``ACTIVATIONS``. Defaults to "sigmoid".

    Returns:
        ``(outputs, [h, c], tape)``: outputs (batch, timesteps, units) in processing order,
        the final states, and the tape (a dict) that ``lstm_backward`` reads.

    Raises:
        KeyError: if an activation is not a key of ``ACTIVATIONS``.

    Example:
        >>> import numpy as np, crnn
        >>> rng = np.random.default_rng(0)
        >>> x = rng.standard_normal((2, 4, 3))
        >>> kernel = rng.standard_normal((3, 4 * 5)) * 0.3
        >>> recurrent_kernel = rng.standard_normal((5, 4 * 5)) * 0.3
        >>> state = [np.zeros((2, 5)), np.zeros((2, 5))]
        >>> outputs, (h, c), tape = crnn.reference.lstm_forward(
        ...     x, kernel, recurrent_kernel, None, state)
        >>> fast, _, _ = crnn.ops.lstm(x, kernel, recurrent_kernel)
        >>> outputs.shape, bool(np.allclose(outputs, fast))
        ((2, 4, 5), True)
    """
    act, _ = ACTIVATIONS[activation]
    ract, _ = ACTIVATIONS[recurrent_activation]
    batch, timesteps, _ = x.shape
    units = recurrent_kernel.shape[0]
    bias = np.zeros(4 * units, x.dtype) if bias is None else bias
    h, c = (np.array(s, dtype=x.dtype) for s in initial_state)
    out_prev = np.zeros((batch, units), x.dtype)
    outputs = np.zeros((batch, timesteps, units), x.dtype)
    tape = dict(x=x, kernel=kernel, recurrent_kernel=recurrent_kernel, steps=[],
                activation=activation, recurrent_activation=recurrent_activation,
                go_backwards=go_backwards, mask=mask)
    for s, t in _steps(timesteps, go_backwards):
        m = _mask_column(mask, t, x)
        z = x[:, t] @ kernel + h @ recurrent_kernel + bias
        i = ract(z[:, :units])
        f = ract(z[:, units:2 * units])
        g = act(z[:, 2 * units:3 * units])
        o = ract(z[:, 3 * units:])
        c_new = f * c + i * g
        act_c = act(c_new)
        h_new = o * act_c
        tape["steps"].append(dict(t=t, m=m, h_tm1=h, c_tm1=c, i=i, f=f, g=g, o=o, act_c=act_c))
        h = m * h_new + (1 - m) * h
        c = m * c_new + (1 - m) * c
        out_prev = m * h_new + (1 - m) * out_prev
        outputs[:, s] = out_prev
    return outputs, [h, c], tape


def lstm_backward(tape: dict[str, Any], d_outputs: np.ndarray,
                  d_final_states: Sequence[ArrayLike]) -> dict[str, Any]:
    """Backpropagate through an ``lstm_forward`` call, in NumPy.

    Args:
        tape: the third value returned by ``lstm_forward``.
        d_outputs: (batch, timesteps, units), the gradient w.r.t. the outputs.
        d_final_states: ``[dh, dc]``, each (batch, units), the gradients w.r.t. the final
            states; required (pass zeros for none).

    Returns:
        A dict with ``dx``, ``d_initial_state`` (``[dh0, dc0]``), ``d_kernel``,
        ``d_recurrent_kernel`` and ``d_bias`` (always an array of shape (4 * units,), even
        when the forward call had no bias).

    Example:
        >>> import numpy as np, crnn
        >>> rng = np.random.default_rng(0)
        >>> x = rng.standard_normal((2, 4, 3))
        >>> kernel = rng.standard_normal((3, 4 * 5)) * 0.3
        >>> recurrent_kernel = rng.standard_normal((5, 4 * 5)) * 0.3
        >>> zeros = [np.zeros((2, 5)), np.zeros((2, 5))]
        >>> outputs, _, tape = crnn.reference.lstm_forward(x, kernel, recurrent_kernel,
        ...                                                None, zeros)
        >>> grads = crnn.reference.lstm_backward(tape, np.ones_like(outputs), zeros)
        >>> grads["dx"].shape, grads["d_bias"].shape
        ((2, 4, 3), (20,))
    """
    x, kernel, recurrent_kernel = tape["x"], tape["kernel"], tape["recurrent_kernel"]
    _, dact = ACTIVATIONS[tape["activation"]]
    _, dract = ACTIVATIONS[tape["recurrent_activation"]]
    dx = np.zeros_like(x)
    d_kernel = np.zeros_like(kernel)
    d_recurrent_kernel = np.zeros_like(recurrent_kernel)
    d_bias = np.zeros(kernel.shape[1], x.dtype)
    dh, dc = (np.array(d, dtype=x.dtype) for d in d_final_states)
    d_out_carry = np.zeros_like(dh)  # gradient reaching the previous step's output
    for s in reversed(range(x.shape[1])):
        st = tape["steps"][s]
        m = st["m"]
        d_out = d_outputs[:, s] + d_out_carry
        d_out_carry = (1 - m) * d_out
        # h = m*h_new + (1-m)*h_tm1 ; out = m*h_new + (1-m)*out_prev
        dh_new = m * (dh + d_out)
        dc_new = m * dc
        # h_new = o * act(c_new)
        do = dh_new * st["act_c"]
        dc_new = dc_new + dh_new * st["o"] * dact(st["act_c"])
        # c_new = f * c_tm1 + i * g
        di = dc_new * st["g"]
        dg = dc_new * st["i"]
        df = dc_new * st["c_tm1"]
        dz = np.concatenate([di * dract(st["i"]), df * dract(st["f"]),
                             dg * dact(st["g"]), do * dract(st["o"])], axis=1)
        t = st["t"]
        dx[:, t] = dz @ kernel.T
        d_kernel += x[:, t].T @ dz
        d_recurrent_kernel += st["h_tm1"].T @ dz
        d_bias += dz.sum(axis=0)
        dh = dz @ recurrent_kernel.T + (1 - m) * dh
        dc = dc_new * st["f"] + (1 - m) * dc
    return dict(dx=dx, d_initial_state=[dh, dc], d_kernel=d_kernel,
                d_recurrent_kernel=d_recurrent_kernel, d_bias=d_bias)


# --------------------------------------------------------------------------- GRU


def gru_forward(x: np.ndarray, kernel: np.ndarray, recurrent_kernel: np.ndarray,
                bias: np.ndarray | None, initial_state: Sequence[ArrayLike],
                mask: np.ndarray | None = None, go_backwards: bool = False,
                activation: str = "tanh", recurrent_activation: str = "sigmoid",
                reset_after: bool = True
                ) -> tuple[np.ndarray, list[np.ndarray], dict[str, Any]]:
    """Run a GRU over whole sequences, in NumPy (the maths of ``crnn.ops.gru``).

    Nothing is checked: the arrays must already have the shapes of the module notes and
    one float dtype, which the outputs keep.

    Args:
        x: (batch, timesteps, features) array.
        kernel: (features, 3 * units), gates in order z, r, h.
        recurrent_kernel: (units, 3 * units).
        bias: (2, 3 * units) (input row, recurrent row) with ``reset_after=True``,
            (3 * units,) with ``reset_after=False``; or None for no bias.
        initial_state: ``[h]`` with h (batch, units); required (pass zeros for none).
        mask: (batch, timesteps) booleans or 0/1, or None (the default) for no mask.
        go_backwards: process the sequence from the last timestep to the first. Defaults
            to False.
        activation: a key of ``ACTIVATIONS``. Defaults to "tanh".
        recurrent_activation: a key of ``ACTIVATIONS``. Defaults to "sigmoid".
        reset_after: apply the reset gate after the recurrent matrix product (Keras 3's
            default) rather than before it. Defaults to True.

    Returns:
        ``(outputs, [h], tape)``: outputs (batch, timesteps, units) in processing order,
        the final state, and the tape (a dict) that ``gru_backward`` reads.

    Raises:
        KeyError: if an activation is not a key of ``ACTIVATIONS``.

    Example:
        >>> import numpy as np, crnn
        >>> rng = np.random.default_rng(0)
        >>> x = rng.standard_normal((2, 4, 3))
        >>> kernel = rng.standard_normal((3, 3 * 5)) * 0.3
        >>> recurrent_kernel = rng.standard_normal((5, 3 * 5)) * 0.3
        >>> bias = rng.standard_normal((2, 3 * 5)) * 0.1
        >>> outputs, [h], _ = crnn.reference.gru_forward(x, kernel, recurrent_kernel, bias,
        ...                                              [np.zeros((2, 5))])
        >>> fast, _, _ = crnn.ops.gru(x, kernel, recurrent_kernel, bias)
        >>> outputs.shape, bool(np.allclose(outputs, fast))
        ((2, 4, 5), True)
    """
    act, _ = ACTIVATIONS[activation]
    ract, _ = ACTIVATIONS[recurrent_activation]
    batch, timesteps, _ = x.shape
    units = recurrent_kernel.shape[0]
    if bias is None:
        bias = np.zeros((2, 3 * units) if reset_after else 3 * units, x.dtype)
    input_bias, recurrent_bias = (bias[0], bias[1]) if reset_after else (bias, 0.0)
    (h,) = (np.array(s, dtype=x.dtype) for s in initial_state)
    out_prev = np.zeros((batch, units), x.dtype)
    outputs = np.zeros((batch, timesteps, units), x.dtype)
    tape = dict(x=x, kernel=kernel, recurrent_kernel=recurrent_kernel, steps=[],
                activation=activation, recurrent_activation=recurrent_activation,
                reset_after=reset_after, bias_shape=np.shape(bias))
    u1, u2 = units, 2 * units
    for s, t in _steps(timesteps, go_backwards):
        m = _mask_column(mask, t, x)
        x_proj = x[:, t] @ kernel + input_bias
        if reset_after:
            inner = h @ recurrent_kernel + recurrent_bias
            z = ract(x_proj[:, :u1] + inner[:, :u1])
            r = ract(x_proj[:, u1:u2] + inner[:, u1:u2])
            hh = act(x_proj[:, u2:] + r * inner[:, u2:])
            saved = dict(inner_h=inner[:, u2:])
        else:
            inner = h @ recurrent_kernel[:, :u2]
            z = ract(x_proj[:, :u1] + inner[:, :u1])
            r = ract(x_proj[:, u1:u2] + inner[:, u1:u2])
            hh = act(x_proj[:, u2:] + (r * h) @ recurrent_kernel[:, u2:])
            saved = {}
        h_new = z * h + (1 - z) * hh
        tape["steps"].append(dict(t=t, m=m, h_tm1=h, z=z, r=r, hh=hh, **saved))
        h = m * h_new + (1 - m) * h
        out_prev = m * h_new + (1 - m) * out_prev
        outputs[:, s] = out_prev
    return outputs, [h], tape


def gru_backward(tape: dict[str, Any], d_outputs: np.ndarray,
                 d_final_states: Sequence[ArrayLike]) -> dict[str, Any]:
    """Backpropagate through a ``gru_forward`` call, in NumPy.

    Args:
        tape: the third value returned by ``gru_forward``.
        d_outputs: (batch, timesteps, units), the gradient w.r.t. the outputs.
        d_final_states: ``[dh]`` with dh (batch, units), the gradient w.r.t. the final
            state; required (pass zeros for none).

    Returns:
        A dict with ``dx``, ``d_initial_state`` (``[dh0]``), ``d_kernel``,
        ``d_recurrent_kernel`` and ``d_bias`` (in the forward bias's shape; when the
        forward call had no bias, that of the zeros it used).

    Example:
        >>> import numpy as np, crnn
        >>> rng = np.random.default_rng(0)
        >>> x = rng.standard_normal((2, 4, 3))
        >>> kernel = rng.standard_normal((3, 3 * 5)) * 0.3
        >>> recurrent_kernel = rng.standard_normal((5, 3 * 5)) * 0.3
        >>> zeros = [np.zeros((2, 5))]
        >>> outputs, _, tape = crnn.reference.gru_forward(x, kernel, recurrent_kernel,
        ...                                               None, zeros)
        >>> grads = crnn.reference.gru_backward(tape, np.ones_like(outputs), zeros)
        >>> grads["d_kernel"].shape, grads["d_bias"].shape
        ((3, 15), (2, 15))
    """
    x, kernel, recurrent_kernel = tape["x"], tape["kernel"], tape["recurrent_kernel"]
    _, dact = ACTIVATIONS[tape["activation"]]
    _, dract = ACTIVATIONS[tape["recurrent_activation"]]
    reset_after = tape["reset_after"]
    units = recurrent_kernel.shape[0]
    u2 = 2 * units
    dx = np.zeros_like(x)
    d_kernel = np.zeros_like(kernel)
    d_recurrent_kernel = np.zeros_like(recurrent_kernel)
    d_bias = np.zeros(tape["bias_shape"], x.dtype)
    (dh,) = (np.array(d, dtype=x.dtype) for d in d_final_states)
    d_out_carry = np.zeros_like(dh)
    for s in reversed(range(x.shape[1])):
        st = tape["steps"][s]
        m, h_tm1, z, r, hh = st["m"], st["h_tm1"], st["z"], st["r"], st["hh"]
        d_out = d_outputs[:, s] + d_out_carry
        d_out_carry = (1 - m) * d_out
        dh_new = m * (dh + d_out)
        # h_new = z * h_tm1 + (1 - z) * hh
        dz_pre = dh_new * (h_tm1 - hh) * dract(z)
        dhh_pre = dh_new * (1 - z) * dact(hh)
        dh_tm1 = dh_new * z + (1 - m) * dh
        if reset_after:
            # hh = act(x_h + r * inner_h), inner = h_tm1 @ U + b_rec
            dr_pre = dhh_pre * st["inner_h"] * dract(r)
            d_x_proj = np.concatenate([dz_pre, dr_pre, dhh_pre], axis=1)
            d_inner = np.concatenate([dz_pre, dr_pre, dhh_pre * r], axis=1)
            dh_tm1 = dh_tm1 + d_inner @ recurrent_kernel.T
            d_recurrent_kernel += h_tm1.T @ d_inner
            d_bias[1] += d_inner.sum(axis=0)
            d_bias[0] += d_x_proj.sum(axis=0)
        else:
            # hh = act(x_h + (r * h_tm1) @ U_h)
            d_rh = dhh_pre @ recurrent_kernel[:, u2:].T
            dr_pre = d_rh * h_tm1 * dract(r)
            d_x_proj = np.concatenate([dz_pre, dr_pre, dhh_pre], axis=1)
            dh_tm1 = dh_tm1 + d_rh * r + d_x_proj[:, :u2] @ recurrent_kernel[:, :u2].T
            d_recurrent_kernel[:, :u2] += h_tm1.T @ d_x_proj[:, :u2]
            d_recurrent_kernel[:, u2:] += (r * h_tm1).T @ dhh_pre
            d_bias += d_x_proj.sum(axis=0)
        t = st["t"]
        dx[:, t] = d_x_proj @ kernel.T
        d_kernel += x[:, t].T @ d_x_proj
        dh = dh_tm1
    return dict(dx=dx, d_initial_state=[dh], d_kernel=d_kernel,
                d_recurrent_kernel=d_recurrent_kernel, d_bias=d_bias)


# --------------------------------------------------------------------------- SimpleRNN


def simple_rnn_forward(x: np.ndarray, kernel: np.ndarray, recurrent_kernel: np.ndarray,
                       bias: np.ndarray | None, initial_state: Sequence[ArrayLike],
                       mask: np.ndarray | None = None, go_backwards: bool = False,
                       activation: str = "tanh"
                       ) -> tuple[np.ndarray, list[np.ndarray], dict[str, Any]]:
    """Run a SimpleRNN over whole sequences, in NumPy (the maths of ``crnn.ops.simple_rnn``).

    Nothing is checked: the arrays must already have the shapes of the module notes and
    one float dtype, which the outputs keep.

    Args:
        x: (batch, timesteps, features) array.
        kernel: (features, units).
        recurrent_kernel: (units, units).
        bias: (units,), or None for no bias.
        initial_state: ``[h]`` with h (batch, units); required (pass zeros for none).
        mask: (batch, timesteps) booleans or 0/1, or None (the default) for no mask.
        go_backwards: process the sequence from the last timestep to the first. Defaults
            to False.
        activation: a key of ``ACTIVATIONS``. Defaults to "tanh".

    Returns:
        ``(outputs, [h], tape)``: outputs (batch, timesteps, units) in processing order,
        the final state, and the tape (a dict) that ``simple_rnn_backward`` reads.

    Raises:
        KeyError: if activation is not a key of ``ACTIVATIONS``.

    Example:
        >>> import numpy as np, crnn
        >>> x = np.ones((1, 3, 1))
        >>> w = np.ones((1, 1))
        >>> outputs, [h], _ = crnn.reference.simple_rnn_forward(
        ...     x, w, w, None, [np.zeros((1, 1))], activation="linear")
        >>> outputs.ravel().tolist()          # h_t = x_t + h_tm1
        [1.0, 2.0, 3.0]
    """
    act, _ = ACTIVATIONS[activation]
    batch, timesteps, _ = x.shape
    units = recurrent_kernel.shape[0]
    bias = np.zeros(units, x.dtype) if bias is None else bias
    (h,) = (np.array(s, dtype=x.dtype) for s in initial_state)
    out_prev = np.zeros((batch, units), x.dtype)
    outputs = np.zeros((batch, timesteps, units), x.dtype)
    tape = dict(x=x, kernel=kernel, recurrent_kernel=recurrent_kernel, steps=[],
                activation=activation)
    for s, t in _steps(timesteps, go_backwards):
        m = _mask_column(mask, t, x)
        h_new = act(x[:, t] @ kernel + h @ recurrent_kernel + bias)
        tape["steps"].append(dict(t=t, m=m, h_tm1=h, h_new=h_new))
        h = m * h_new + (1 - m) * h
        out_prev = m * h_new + (1 - m) * out_prev
        outputs[:, s] = out_prev
    return outputs, [h], tape


def simple_rnn_backward(tape: dict[str, Any], d_outputs: np.ndarray,
                        d_final_states: Sequence[ArrayLike]) -> dict[str, Any]:
    """Backpropagate through a ``simple_rnn_forward`` call, in NumPy.

    Args:
        tape: the third value returned by ``simple_rnn_forward``.
        d_outputs: (batch, timesteps, units), the gradient w.r.t. the outputs.
        d_final_states: ``[dh]`` with dh (batch, units), the gradient w.r.t. the final
            state; required (pass zeros for none).

    Returns:
        A dict with ``dx``, ``d_initial_state`` (``[dh0]``), ``d_kernel``,
        ``d_recurrent_kernel`` and ``d_bias`` (always an array of shape (units,), even when
        the forward call had no bias).

    Example:
        >>> import numpy as np, crnn
        >>> x = np.ones((1, 3, 1))
        >>> w = np.ones((1, 1))
        >>> zeros = [np.zeros((1, 1))]
        >>> outputs, _, tape = crnn.reference.simple_rnn_forward(x, w, w, None, zeros,
        ...                                                      activation="linear")
        >>> grads = crnn.reference.simple_rnn_backward(tape, np.ones_like(outputs), zeros)
        >>> grads["dx"].ravel().tolist()      # d(h1 + h2 + h3)/dx_t = 3, 2, 1
        [3.0, 2.0, 1.0]
    """
    x, kernel, recurrent_kernel = tape["x"], tape["kernel"], tape["recurrent_kernel"]
    _, dact = ACTIVATIONS[tape["activation"]]
    dx = np.zeros_like(x)
    d_kernel = np.zeros_like(kernel)
    d_recurrent_kernel = np.zeros_like(recurrent_kernel)
    d_bias = np.zeros(kernel.shape[1], x.dtype)
    (dh,) = (np.array(d, dtype=x.dtype) for d in d_final_states)
    d_out_carry = np.zeros_like(dh)
    for s in reversed(range(x.shape[1])):
        st = tape["steps"][s]
        m = st["m"]
        d_out = d_outputs[:, s] + d_out_carry
        d_out_carry = (1 - m) * d_out
        dz = m * (dh + d_out) * dact(st["h_new"])
        t = st["t"]
        dx[:, t] = dz @ kernel.T
        d_kernel += x[:, t].T @ dz
        d_recurrent_kernel += st["h_tm1"].T @ dz
        d_bias += dz.sum(axis=0)
        dh = dz @ recurrent_kernel.T + (1 - m) * dh
    return dict(dx=dx, d_initial_state=[dh], d_kernel=d_kernel,
                d_recurrent_kernel=d_recurrent_kernel, d_bias=d_bias)
