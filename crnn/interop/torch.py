"""PyTorch ``nn.LSTM``/``nn.GRU``/``nn.RNN`` (+ ``nn.Linear``) weights to crnn and back.

PyTorch is never imported: a ``state_dict`` may hold NumPy arrays or tensors (anything with
``.detach().cpu().numpy()``), and :func:`to_state_dict` returns NumPy arrays, which
``module.load_state_dict({k: torch.from_numpy(v) ...})`` takes.

The maths (PyTorch's gate order left, Keras's/crnn's right; ``l`` is the layer index,
``_reverse`` the backward direction of a bidirectional layer):

* LSTM, gates i, f, g, o in both: ``kernel = weight_ih_l.T``,
  ``recurrent_kernel = weight_hh_l.T``, ``bias = bias_ih_l + bias_hh_l``.
* GRU, PyTorch rows r, z, n, Keras columns z, r, h: the row blocks are reordered, and the
  two biases stay apart as the ``(2, 3 * units)`` bias of ``GRU(reset_after=True)``
  (PyTorch's GRU applies the reset gate after the recurrent product, which is exactly
  Keras's ``reset_after=True``; a ``reset_after=False`` GRU has no PyTorch equivalent).
* RNN (``nonlinearity`` tanh or relu) = ``SimpleRNN``, bias summed as for LSTM.
* ``nn.Linear``: ``kernel = weight.T``.

``num_layers > 1`` becomes a stack of crnn layers (all but the last with
``return_sequences=True``), ``bidirectional=True`` a ``Bidirectional`` (merge ``concat``).
crnn inputs are always ``(batch, timesteps, features)``: for ``batch_first=False`` modules
transpose the input, ``x.transpose(1, 0, 2)``. With ``return_sequences=True`` crnn returns
PyTorch's ``output`` (batch first); with ``return_sequences=False`` it returns the last
layer's final hidden state, PyTorch's ``h_n[-1]`` (``torch.cat([h_n[-2], h_n[-1]], 1)``
when bidirectional), which is not ``output[:, -1]`` for the backward direction.
``proj_size > 0`` (LSTM projections) has no crnn equivalent and is refused.

Example:
    >>> import numpy as np, crnn
    >>> from crnn.interop import torch as from_torch
    >>> rng = np.random.default_rng(0)
    >>> sd = {"weight_ih_l0": rng.normal(size=(12, 2)), "weight_hh_l0": rng.normal(size=(12, 4)),
    ...       "bias_ih_l0": np.zeros(12), "bias_hh_l0": np.zeros(12)}
    >>> model = from_torch.sequential_from_state_dict(sd, "GRU", timesteps=5)
    >>> model.predict(np.zeros((4, 5, 2)), verbose=0).shape
    (4, 4)
    >>> sorted(from_torch.to_state_dict(model)) == sorted(sd)
    True
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from crnn.layers import Dense, Layer
    from crnn.models import Sequential

__all__ = ["dense_from_state_dict", "layers_from_state_dict", "sequential_from_state_dict",
           "to_state_dict"]

_GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
_KEY = re.compile(r"^(weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)_l(\d+)(_reverse)?$")


def _numpy(name, value):
    """A state_dict entry as a float NumPy array (tensors via duck typing, no torch import)."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu()
        if str(getattr(value, "dtype", "")) == "torch.bfloat16":
            value = value.float()       # NumPy has no bfloat16; float32 holds it exactly
        value = value.numpy()
    array = np.asarray(value)
    if array.dtype.kind not in "fiu":
        raise TypeError(f"state_dict[{name!r}] must be a numeric array or tensor, received "
                        f"dtype {array.dtype}")
    return array


def _mode(mode):
    mode = str(mode).upper()
    if mode not in _GATES:
        raise ValueError(f"mode must be 'LSTM', 'GRU' or 'RNN' (the PyTorch module class), "
                         f"received {mode!r}")
    return mode


def _split(state_dict, prefix):
    """``{(layer, reverse): {kind: array}}`` from the keys under ``prefix``."""
    if not isinstance(state_dict, dict) and not hasattr(state_dict, "items"):
        raise TypeError(f"state_dict must be a dict (module.state_dict()), received "
                        f"{type(state_dict).__name__}")
    groups = {}
    for key, value in state_dict.items():
        if not isinstance(key, str) or not key.startswith(prefix):
            continue
        rest = key[len(prefix):]
        if "." in rest:             # another submodule's entry, e.g. "head.weight"
            continue
        match = _KEY.match(rest)
        if match is None:
            raise ValueError(f"state_dict key {key!r} is not an nn.LSTM/GRU/RNN weight "
                             f"(expected e.g. {prefix}weight_ih_l0); pass prefix= to select "
                             f"the recurrent module's entries")
        kind, layer, reverse = match.group(1), int(match.group(2)), bool(match.group(3))
        if kind == "weight_hr":
            raise ValueError(f"state_dict key {key!r}: the LSTM has proj_size > 0 "
                             f"(projected hidden states), which crnn's LSTM does not have")
        groups.setdefault((layer, reverse), {})[kind] = _numpy(key, value)
    if not groups:
        raise ValueError(f"state_dict has no recurrent weights under prefix {prefix!r} "
                         f"(keys: {sorted(state_dict)[:6]})")
    layers = sorted({k for k, _ in groups})
    if layers != list(range(len(layers))):
        raise ValueError(f"state_dict layers must be numbered l0, l1, ...; found {layers}")
    bidirectional = (0, True) in groups
    for k in layers:
        if ((k, True) in groups) != bidirectional:
            raise ValueError(f"state_dict layer {k} has {'no ' if bidirectional else ''}"
                             f"_reverse weights, unlike layer 0")
    return groups, len(layers), bidirectional


def _cell_weights(mode, weights, where, input_size):
    """crnn ``[kernel, recurrent_kernel, (bias)]`` and units from one direction's tensors."""
    gates = _GATES[mode]
    for kind in ("weight_ih", "weight_hh"):
        if kind not in weights:
            raise ValueError(f"state_dict has no {kind} for {where}")
    w_ih, w_hh = weights["weight_ih"], weights["weight_hh"]
    if w_hh.ndim != 2 or w_hh.shape[0] != gates * w_hh.shape[1]:
        raise ValueError(f"{where}: weight_hh has shape {w_hh.shape}, expected "
                         f"({gates} * hidden_size, hidden_size) for {mode}")
    units = w_hh.shape[1]
    if w_ih.ndim != 2 or w_ih.shape[0] != gates * units or \
            (input_size is not None and w_ih.shape[1] != input_size):
        raise ValueError(f"{where}: weight_ih has shape {w_ih.shape}, expected "
                         f"({gates * units}, {input_size if input_size else 'input_size'})")
    has_bias = "bias_ih" in weights or "bias_hh" in weights
    if has_bias:
        for kind in ("bias_ih", "bias_hh"):
            if weights.get(kind) is None or weights[kind].shape != (gates * units,):
                raise ValueError(f"{where}: {kind} must have shape ({gates * units},), "
                                 f"received "
                                 f"{None if weights.get(kind) is None else weights[kind].shape}")
    b_ih, b_hh = weights.get("bias_ih"), weights.get("bias_hh")
    if mode == "GRU":
        # PyTorch rows r, z, n -> Keras columns z, r, h.
        def order(a):
            r, z, n = np.split(a, 3, axis=0)
            return np.concatenate([z, r, n], axis=0)
        result = [order(w_ih).T, order(w_hh).T]
        if has_bias:
            result.append(np.stack([order(b_ih), order(b_hh)]))
    else:
        result = [w_ih.T, w_hh.T]
        if has_bias:
            result.append(b_ih + b_hh)
    return result, units, has_bias, w_ih.shape[1]


def _convert(state_dict, mode, prefix, return_sequences, nonlinearity, stateful, dtype):
    """Unbuilt crnn layers, their weights (one list per layer) and the input size."""
    from crnn.layers import GRU, LSTM, Bidirectional, SimpleRNN

    mode = _mode(mode)
    if mode == "RNN" and nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu', received {nonlinearity!r}")
    groups, num_layers, bidirectional = _split(state_dict, prefix)
    layers, weights = [], []
    input_size = first_input = None
    for k in range(num_layers):
        converted = []
        for reverse in ([False, True] if bidirectional else [False]):
            where = f"layer {k}{' (reverse)' if reverse else ''}"
            converted.append(_cell_weights(mode, groups[(k, reverse)], where, input_size))
        units, has_bias = converted[0][1], converted[0][2]
        if any(c[1] != units or c[2] != has_bias for c in converted):
            raise ValueError(f"layer {k}: the two directions differ in hidden size or bias")
        if first_input is None:
            first_input = converted[0][3]
        options = {"units": units, "use_bias": has_bias, "stateful": stateful, "dtype": dtype,
                   "return_sequences": return_sequences or k < num_layers - 1}
        if mode == "LSTM":
            layer = LSTM(unit_forget_bias=False, **options)
        elif mode == "GRU":
            layer = GRU(reset_after=True, **options)
        else:
            layer = SimpleRNN(activation=nonlinearity, **options)
        layers.append(Bidirectional(layer, merge_mode="concat") if bidirectional else layer)
        weights.append([w for c in converted for w in c[0]])
        input_size = units * (2 if bidirectional else 1)
    return layers, weights, first_input


def layers_from_state_dict(state_dict: Mapping[str, Any], mode: str, prefix: str = "",
                           return_sequences: bool = False, nonlinearity: str = "tanh",
                           stateful: bool = False, batch_size: int | None = None,
                           dtype: str = "float32") -> list[Layer]:
    """crnn layers with the weights of a PyTorch ``nn.LSTM``/``nn.GRU``/``nn.RNN``.

    ``num_layers``, ``bidirectional``, ``hidden_size``, ``input_size`` and ``bias`` are read
    from the keys and shapes.

    Args:
        state_dict: ``module.state_dict()`` (tensors or NumPy arrays), or a larger model's
            ``state_dict`` with ``prefix`` selecting the recurrent module.
        mode: ``"LSTM"``, ``"GRU"`` or ``"RNN"`` (any case).
        prefix: the recurrent module's key prefix, e.g. ``"rnn."`` (default ``""``).
        return_sequences: the last layer returns the whole sequence (PyTorch's
            ``output``) instead of its final hidden state (``h_n[-1]``). Default False.
        nonlinearity: for ``"RNN"``, the module's ``nonlinearity`` (``"tanh"``, the
            default, or ``"relu"``).
        stateful: make the layers stateful (then ``batch_size`` is needed). Default False.
        batch_size: the batch size to build the layers for (None, the default: any).
        dtype: ``"float32"`` (default) or ``"float64"``.

    Returns:
        A list of built crnn layers, one per PyTorch layer: ``LSTM``/``GRU``/``SimpleRNN``,
        or ``Bidirectional`` of them.

    Raises:
        TypeError: ``state_dict`` is not a dict, or an entry is not a numeric array or
            tensor.
        ValueError: unknown keys, inconsistent shapes, ``proj_size > 0``, a bad mode or
            nonlinearity, or ``stateful=True`` without ``batch_size``.

    Example:
        >>> import numpy as np
        >>> from crnn.interop import torch as from_torch
        >>> sd = {"weight_ih_l0": np.zeros((16, 3)), "weight_hh_l0": np.zeros((16, 4)),
        ...       "weight_ih_l1": np.zeros((16, 4)), "weight_hh_l1": np.zeros((16, 4))}
        >>> layers = from_torch.layers_from_state_dict(sd, "LSTM")    # num_layers=2, bias=False
        >>> [(type(layer).__name__, layer.units, layer.return_sequences) for layer in layers]
        [('LSTM', 4, True), ('LSTM', 4, False)]
    """
    if stateful and batch_size is None:
        raise ValueError("stateful=True needs batch_size=... (a stateful layer keeps one "
                         "state per sample slot)")
    layers, weights, features = _convert(state_dict, mode, prefix, return_sequences,
                                         nonlinearity, stateful, dtype)
    shape = (batch_size, None, features)
    for layer, values in zip(layers, weights):
        layer.build(shape)
        layer.set_weights(values)
        shape = layer.compute_output_shape(shape)
    return layers


def dense_from_state_dict(state_dict: Mapping[str, Any], prefix: str = "",
                          activation: str | None = None, dtype: str = "float32") -> Dense:
    """A built crnn ``Dense`` with the weights of a PyTorch ``nn.Linear``.

    Args:
        state_dict: holds ``weight`` (out, in) and optionally ``bias`` (out,), under
            ``prefix``.
        prefix: the Linear module's key prefix, e.g. ``"head."`` (default ``""``).
        activation: the activation that follows it in the PyTorch model, if any (default
            None: linear).
        dtype: ``"float32"`` (default) or ``"float64"``.

    Returns:
        A ``Dense`` layer.

    Raises:
        TypeError: an entry is not a numeric array or tensor.
        ValueError: there is no ``weight`` under ``prefix``, or ``weight`` is not 2-D, or
            ``bias`` does not match it.

    Example:
        >>> import numpy as np
        >>> from crnn.interop import torch as from_torch
        >>> sd = {"head.weight": np.ones((2, 3)), "head.bias": np.array([0.5, -0.5])}
        >>> dense = from_torch.dense_from_state_dict(sd, prefix="head.")
        >>> dense.kernel.shape, dense.bias.tolist()       # kernel = weight.T
        ((3, 2), [0.5, -0.5])
    """
    from crnn.layers import Dense

    if f"{prefix}weight" not in state_dict:
        raise ValueError(f"state_dict has no {prefix}weight (an nn.Linear's weight)")
    weight = _numpy(f"{prefix}weight", state_dict[f"{prefix}weight"])
    if weight.ndim != 2:
        raise ValueError(f"state_dict[{prefix + 'weight'!r}] must be 2-D (out, in), "
                         f"received shape {weight.shape}")
    bias = state_dict.get(f"{prefix}bias")
    weights = [weight.T]
    if bias is not None:
        bias = _numpy(f"{prefix}bias", bias)
        if bias.shape != (weight.shape[0],):
            raise ValueError(f"state_dict[{prefix + 'bias'!r}] must have shape "
                             f"({weight.shape[0]},), received {bias.shape}")
        weights.append(bias)
    layer = Dense(weight.shape[0], activation=activation, use_bias=bias is not None,
                  dtype=dtype)
    layer.build((None, weight.shape[1]))
    layer.set_weights(weights)
    return layer


def sequential_from_state_dict(state_dict: Mapping[str, Any], mode: str, prefix: str = "",
                               head_prefix: str | None = None,
                               head_activation: str | None = None,
                               timesteps: int | None = None, batch_size: int | None = None,
                               return_sequences: bool = False, nonlinearity: str = "tanh",
                               stateful: bool = False, dtype: str = "float32") -> Sequential:
    """A crnn ``Sequential``: the recurrent module's layers, then an optional Linear head.

    Args:
        state_dict: a module's ``state_dict()``.
        mode: ``"LSTM"``, ``"GRU"`` or ``"RNN"``.
        prefix: key prefix of the recurrent module (e.g. ``"rnn."``; default ``""``).
        head_prefix: key prefix of an ``nn.Linear`` applied to the recurrent output (e.g.
            ``"head."``), or None (the default) for no head. With ``return_sequences=True``
            it is applied at every timestep, as ``nn.Linear`` on a 3-D tensor does.
        head_activation: activation after the head, if any (default None).
        timesteps: the sequence length to declare (None, the default: any).
        batch_size: the batch size to declare (None, the default: any; needed with
            ``stateful=True``).
        return_sequences: as in :func:`layers_from_state_dict` (default False).
        nonlinearity: as in :func:`layers_from_state_dict` (default ``"tanh"``).
        stateful: as in :func:`layers_from_state_dict` (default False).
        dtype: as in :func:`layers_from_state_dict` (default ``"float32"``).

    Returns:
        A built ``Sequential``, uncompiled.

    Raises:
        TypeError: as in :func:`layers_from_state_dict`.
        ValueError: as in :func:`layers_from_state_dict`, or the head's input size is not
            the recurrent module's output size.

    Example:
        >>> import numpy as np
        >>> from crnn.interop import torch as from_torch
        >>> sd = {"rnn.weight_ih_l0": np.zeros((4, 2)), "rnn.weight_hh_l0": np.zeros((4, 4)),
        ...       "rnn.bias_ih_l0": np.zeros(4), "rnn.bias_hh_l0": np.zeros(4),
        ...       "head.weight": np.zeros((1, 4)), "head.bias": np.ones(1)}
        >>> model = from_torch.sequential_from_state_dict(
        ...     sd, "RNN", prefix="rnn.", head_prefix="head.", nonlinearity="relu")
        >>> [type(layer).__name__ for layer in model.layers]
        ['SimpleRNN', 'Dense']
        >>> model.predict(np.ones((1, 3, 2)), verbose=0)   # zero weights: the head's bias
        array([[1.]], dtype=float32)
    """
    from crnn.layers import Input, TimeDistributed
    from crnn.models import Sequential

    if stateful and batch_size is None:
        raise ValueError("stateful=True needs batch_size=... (a stateful model keeps one "
                         "state per sample slot)")
    layers, weights, features = _convert(state_dict, mode, prefix, return_sequences,
                                         nonlinearity, stateful, dtype)
    head = None
    if head_prefix is not None:
        head = dense_from_state_dict(state_dict, head_prefix, activation=head_activation,
                                     dtype=dtype)
        if head.input_shape[-1] != _output_size(layers[-1]):
            raise ValueError(f"the head {head_prefix}weight takes {head.input_shape[-1]} "
                             f"inputs, the recurrent module outputs "
                             f"{_output_size(layers[-1])}")
    model = Sequential([Input(batch_shape=(batch_size, timesteps, features))] + layers)
    if head is not None:
        model.add(TimeDistributed(head) if return_sequences else head)
    model.set_weights([w for values in weights for w in values]
                      + (head.get_weights() if head is not None else []))
    return model


def _output_size(layer):
    inner = getattr(layer, "forward_layer", layer)
    return inner.units * (2 if inner is not layer else 1)


def _recurrent_parts(layer):
    """``(mode, [direction layers], bidirectional, return_sequences)`` of a crnn layer."""
    from crnn.layers import GRU, LSTM, Bidirectional, SimpleRNN

    inner = [layer.forward_layer, layer.backward_layer] if isinstance(layer, Bidirectional) \
        else [layer]
    first = inner[0]
    if isinstance(first, LSTM):
        mode = "LSTM"
    elif isinstance(first, GRU):
        mode = "GRU"
    elif isinstance(first, SimpleRNN):
        mode = "RNN"
    else:
        raise ValueError(f"layer {layer.name!r} ({type(layer).__name__}) has no PyTorch "
                         f"nn.LSTM/GRU/RNN equivalent")
    if isinstance(layer, Bidirectional) and layer.merge_mode != "concat":
        raise ValueError(f"layer {layer.name!r}: PyTorch concatenates the two directions; "
                         f"merge_mode={layer.merge_mode!r} has no equivalent")
    for cell in inner:
        if mode == "GRU" and not cell.reset_after:
            raise ValueError(f"layer {cell.name!r}: GRU(reset_after=False) has no PyTorch "
                             f"equivalent (nn.GRU applies the reset gate after the recurrent "
                             f"product, which is reset_after=True)")
        expected = ("tanh", "relu") if mode == "RNN" else ("tanh",)
        if cell.activation not in expected:
            raise ValueError(f"layer {cell.name!r}: activation={cell.activation!r} has no "
                             f"PyTorch equivalent (PyTorch: {' or '.join(expected)})")
        if mode != "RNN" and cell.recurrent_activation != "sigmoid":
            raise ValueError(f"layer {cell.name!r}: recurrent_activation="
                             f"{cell.recurrent_activation!r} has no PyTorch equivalent "
                             f"(PyTorch: sigmoid)")
    if first.go_backwards:
        # In a Bidirectional, a go_backwards forward layer swaps the two directions.
        raise ValueError(f"layer {layer.name!r}: go_backwards=True (of the wrapped layer, "
                         f"for a Bidirectional) has no PyTorch equivalent")
    return mode, inner, isinstance(layer, Bidirectional), first.return_sequences


def to_state_dict(model: Sequential | Sequence[Layer], prefix: str = "",
                  head_prefix: str = "head.") -> dict[str, np.ndarray]:
    """A PyTorch ``state_dict`` (NumPy arrays) from a crnn model's recurrent stack and head.

    The model (or list of layers) must be: recurrent layers of one kind (``LSTM``, ``GRU``
    with ``reset_after=True``, or ``SimpleRNN``), all with the same ``units`` and all
    bidirectional (``merge_mode="concat"``) or none, then optionally ``Dropout`` layers and
    one ``Dense`` head (or ``TimeDistributed(Dense)``) with a linear activation. The
    matching PyTorch module is
    ``nn.LSTM(input_size, units, num_layers=len(stack), bidirectional=..., batch_first=True)``
    (``nn.RNN(..., nonlinearity=...)``), plus ``nn.Linear`` for the head. An LSTM bias
    goes to ``bias_ih`` with a zero ``bias_hh`` (PyTorch adds the two).

    Args:
        model: a ``Sequential`` or a list of layers, built.
        prefix: prefix of the recurrent module's keys (e.g. ``"rnn."``; default ``""``).
        head_prefix: prefix of the head's keys (default ``"head."``).

    Returns:
        ``{key: np.ndarray}``; load it with
        ``module.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})``.

    Raises:
        ValueError: a layer that is not built, no recurrent layer, or a layer or option
            with no PyTorch equivalent.

    Example:
        >>> import crnn
        >>> from crnn.interop import torch as from_torch
        >>> model = crnn.Sequential([crnn.layers.GRU(4, input_shape=(None, 2)),
        ...                          crnn.layers.Dense(1)])
        >>> sd = from_torch.to_state_dict(model, prefix="rnn.")
        >>> for key, value in sd.items():           # nn.GRU(2, 4), then nn.Linear(4, 1)
        ...     print(key, value.shape)
        rnn.weight_ih_l0 (12, 2)
        rnn.weight_hh_l0 (12, 4)
        rnn.bias_ih_l0 (12,)
        rnn.bias_hh_l0 (12,)
        head.weight (1, 4)
        head.bias (1,)
    """
    from crnn.layers import Dense, Dropout, TimeDistributed

    layers = model.layers if hasattr(model, "layers") else list(model)
    stack, rest = [], []
    for layer in layers:
        if not getattr(layer, "built", False):
            raise ValueError(f"layer {layer.name!r} is not built: it has no weights yet")
        if rest or isinstance(layer, (Dense, Dropout, TimeDistributed)):
            rest.append(layer)
        else:
            stack.append(_recurrent_parts(layer) + (layer,))
    if not stack:
        raise ValueError("the model has no recurrent layer to convert")
    mode, _, bidirectional, _, _ = stack[0]
    units = stack[0][1][0].units
    use_bias = stack[0][1][0].use_bias
    for k, (m, inner, bi, seq, layer) in enumerate(stack):
        if m != mode or bi != bidirectional or inner[0].units != units \
                or any(cell.use_bias != use_bias for cell in inner):
            raise ValueError(f"layer {layer.name!r}: a PyTorch {mode} stack has one cell kind, "
                             f"one hidden size ({units}), one bias flag ({use_bias}) and one "
                             f"bidirectional flag for all layers")
        if k < len(stack) - 1 and not seq:
            raise ValueError(f"layer {layer.name!r} must have return_sequences=True to feed "
                             f"the next recurrent layer")
    state = {}
    for k, (_, inner, _, _, _) in enumerate(stack):
        for cell, suffix in zip(inner, ("", "_reverse")):
            weights = cell.get_weights()
            kernel, recurrent = weights[0], weights[1]
            bias = weights[2] if cell.use_bias else None
            if mode == "GRU":
                def order(a, axis):
                    z, r, n = np.split(a, 3, axis=axis)
                    return np.concatenate([r, z, n], axis=axis)
                state[f"{prefix}weight_ih_l{k}{suffix}"] = order(kernel, 1).T.copy()
                state[f"{prefix}weight_hh_l{k}{suffix}"] = order(recurrent, 1).T.copy()
                if bias is not None:
                    state[f"{prefix}bias_ih_l{k}{suffix}"] = order(bias[0], 0)
                    state[f"{prefix}bias_hh_l{k}{suffix}"] = order(bias[1], 0)
            else:
                state[f"{prefix}weight_ih_l{k}{suffix}"] = kernel.T.copy()
                state[f"{prefix}weight_hh_l{k}{suffix}"] = recurrent.T.copy()
                if bias is not None:
                    state[f"{prefix}bias_ih_l{k}{suffix}"] = bias.copy()
                    state[f"{prefix}bias_hh_l{k}{suffix}"] = np.zeros_like(bias)
    heads = [layer for layer in rest if not isinstance(layer, Dropout)]
    if len(heads) > 1:
        raise ValueError(f"after the recurrent layers only one Dense head is converted, found "
                         f"{[layer.name for layer in heads]}")
    if heads:
        head = heads[0].layer if isinstance(heads[0], TimeDistributed) else heads[0]
        if not isinstance(head, Dense):
            raise ValueError(f"layer {heads[0].name!r} is not a Dense head")
        if head.activation != "linear":
            raise ValueError(f"layer {head.name!r}: activation={head.activation!r}; nn.Linear "
                             f"has none, so only a linear head converts (apply the activation "
                             f"after the PyTorch module, or convert the layers before it)")
        weights = head.get_weights()
        state[f"{head_prefix}weight"] = weights[0].T.copy()
        if head.use_bias:
            state[f"{head_prefix}bias"] = weights[1].copy()
    return state
