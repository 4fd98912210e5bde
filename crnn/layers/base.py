"""The ``Layer`` base class and ``InputLayer``/``Input``.

A crnn layer is a small object with weights (plain NumPy arrays, updated in place by the
optimizers) and two methods that the model drives:

* ``forward(x, training=False, mask=None)`` returns ``(outputs, cache)``;
* ``backward(cache, d_outputs)`` returns ``(dx, grads)``, ``grads`` aligned with
  ``layer.trainable_weights``. A layer whose ``backward`` also takes the keyword
  ``need_dx`` may skip ``dx`` (return None) when it is False: a model asks that of its
  first layer with trainable weights, whose input needs no gradient (``backward_call``).

Calling a layer on a NumPy array (``layer(x)``) builds it if needed and returns the
outputs, as in Keras.
"""

from __future__ import annotations

import contextlib
import inspect
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from crnn import initializers
from crnn._validation import check_positive_int, is_int

__all__ = ["Layer", "InputLayer", "Input"]

_NAME_COUNTS = {}


def _snake_case(name):
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


def unique_name(prefix: str) -> str:
    """Keras-style automatic names: ``lstm``, ``lstm_1``, ``lstm_2``...

    Args:
        prefix: the snake_case class name, e.g. ``"lstm"``.

    Returns:
        ``prefix`` the first time, then ``prefix_1``, ``prefix_2``... (counted per process).
    """
    count = _NAME_COUNTS.get(prefix, 0)
    _NAME_COUNTS[prefix] = count + 1
    return prefix if count == 0 else f"{prefix}_{count}"


def _shape_tuple(name, value, allow_none_first=True):
    """Check a user-given shape: a tuple of positive ints (None allowed where noted).

    Floats are refused, even integral ones (``2.0``), as Keras refuses them: a size of 2.5
    must not be truncated silently to 2.
    """
    if is_int(value):
        value = (value,)
    try:
        entries = tuple(value)
    except TypeError:
        raise ValueError(f"{name} must be a tuple of ints, received {value!r}") from None
    for k, v in enumerate(entries):
        if v is None and (k == 0 and allow_none_first or k > 0):
            continue
        if not is_int(v) or v <= 0:
            raise ValueError(
                f"{name} must contain positive ints (or None), received {value!r}: entry {k} "
                f"is {v!r} of type {type(v).__name__}"
            )
    return tuple(None if v is None else int(v) for v in entries)


def check_rate(name: str, value: float) -> float:
    """Validate a dropout-style rate in [0, 1).

    Args:
        name: the argument's name, for the error message.
        value: the rate.

    Returns:
        ``value`` as a float.

    Raises:
        ValueError: if ``value`` is not a number (bools refused) in [0, 1).
    """
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < 1:
        raise ValueError(f"{name} must be a float in [0, 1), received {value!r}")
    return float(value)



# Array kinds accepted as weights and states: bool, ints, floats. Complex (the imaginary
# part would be dropped), datetimes, strings (even numeric ones), bytes, objects and
# structured records are refused.
_NUMERIC_KINDS = "biuf"


def check_numeric(what: str, value: ArrayLike) -> np.ndarray:
    """``value`` as an array, refused unless its dtype is bool, integer or floating.

    Args:
        what: names the array in the error message, e.g. ``"weight 3 of layer 'lstm'"``.
        value: anything ``np.asarray`` accepts.

    Returns:
        ``np.asarray(value)`` (no copy for an array).

    Raises:
        TypeError: for complex, datetime, string, object or structured data.
    """
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as error:     # ragged nested lists
        raise TypeError(f"{what} must be a numeric array, received {type(value).__name__} "
                        f"that NumPy can't convert ({error})") from None
    if array.dtype.kind not in _NUMERIC_KINDS:
        raise TypeError(
            f"{what} must be a real numeric array (bool, int or float), received dtype "
            f"{array.dtype}; convert it explicitly (e.g. np.real(a) or a.astype('float32'))"
        )
    return array


def check_data_format(data_format: str | None) -> str:
    """Checks a ``data_format`` argument: crnn's layers take ``"channels_last"`` only.

    Args:
        data_format: the value received.

    Returns:
        ``"channels_last"``.

    Raises:
        ValueError: if ``data_format`` is neither ``"channels_last"`` nor None.
    """
    if data_format not in (None, "channels_last"):
        raise ValueError(f"data_format must be 'channels_last' or None, received {data_format!r}")
    return "channels_last"


def numeric_input(layer: Layer, x: ArrayLike) -> np.ndarray:
    """A layer's input as an array, refused unless its dtype is bool, integer or floating.

    Args:
        layer: the layer, named in the error message.
        x: the input, anything ``np.asarray`` accepts.

    Returns:
        ``np.asarray(x)`` (no copy for an array).

    Raises:
        TypeError: for non-numeric input.
    """
    x = np.asarray(x)
    if x.dtype.kind not in _NUMERIC_KINDS:
        raise TypeError(f"layer {layer.name!r} needs numeric input, received dtype {x.dtype}")
    return x


def float_input(layer: Layer, x: ArrayLike) -> np.ndarray:
    """A layer's numeric input (see ``numeric_input``) in the layer's dtype.

    Args:
        layer: the layer.
        x: the input.

    Returns:
        The input as an array of ``layer.dtype`` (no copy if it already is one).

    Raises:
        TypeError: for non-numeric input.
    """
    return numeric_input(layer, x).astype(layer.dtype, copy=False)


def assign_weights(owner: str, targets: Sequence[np.ndarray],
                   weights: Sequence[ArrayLike]) -> None:
    """Copy ``weights`` into the arrays ``targets`` in place, for ``set_weights``.

    All or nothing: the count, every dtype and every shape are checked and every value is
    converted to its target's dtype before the first copy, so a bad list (or a warning
    turned into an error by a filter) leaves the weights untouched.

    Args:
        owner: names the layer or model in the error messages.
        targets: the weight arrays to write into.
        weights: the new values, one per target.

    Raises:
        TypeError: if ``weights`` is an array or not iterable, or holds a non-numeric array.
        ValueError: if the count or a shape differs from ``targets``.
    """
    if isinstance(weights, np.ndarray) or not hasattr(weights, "__iter__"):
        raise TypeError(f"{owner}: set_weights expects a list of arrays, received "
                        f"{type(weights).__name__}")
    weights = list(weights)
    if len(weights) != len(targets):
        raise ValueError(
            f"{owner} has {len(targets)} weight arrays, received {len(weights)}; "
            f"expected shapes {[w.shape for w in targets]}"
        )
    values = []
    for k, (target, value) in enumerate(zip(targets, weights)):
        value = check_numeric(f"weight {k} of {owner}", value)
        if value.shape != target.shape:
            raise ValueError(
                f"weight {k} of {owner} must have shape {target.shape}, "
                f"received shape {value.shape}"
            )
        values.append(value)
    values = [np.asarray(value, dtype=target.dtype) for target, value in zip(targets, values)]
    for target, value in zip(targets, values):
        target[...] = value


# Held while a layer or model builds on its first call, so that concurrent first calls
# build once (re-entrant: a model's build builds its layers, a wrapper's its inner layers).
# One lock for all: builds are rare and short, and a lock per object would not survive
# copy.deepcopy.
BUILD_LOCK = threading.RLock()

# While a file is being loaded, ``add_weight`` takes each weight from the file instead of
# running the initializer (see ``weights_from``); per thread, so that other threads build
# their layers as usual.
_RESTORE = threading.local()


@contextlib.contextmanager
def weights_from(
        provider: Callable[[str, tuple[int, ...], np.dtype], np.ndarray]) -> Iterator[None]:
    """Build layers with their weights supplied by ``provider``, running no initializer.

    ``crnn.saving`` uses it: a file's weights are checked against each shape a layer asks
    for before anything of that shape is allocated, and the file's arrays become the
    weights (no initializer runs, so a large model loads in time proportional to its size).

    Args:
        provider: a callable ``provider(owner, shape, dtype) -> np.ndarray`` returning the
            next weight, of exactly that shape and dtype, C-contiguous; it raises
            ``ValueError`` when it has none that fits. ``owner`` is ``"layer/weight"``.

    Yields:
        None. Stateful recurrent layers built inside leave their states unset: the caller
        restores them.
    """
    previous = getattr(_RESTORE, "provider", None)
    _RESTORE.provider = provider
    try:
        yield
    finally:
        _RESTORE.provider = previous


_TAKES_NEED_DX = {}


def backward_call(layer: Layer, cache: Any, d_outputs: Any,
                  need_dx: bool = True) -> tuple[Any, list[Any]]:
    """``layer.backward(cache, d_outputs)``, passing ``need_dx=False`` on where the
    layer's ``backward`` takes that keyword (a user's subclass may not): ``dx`` may then
    be None. With ``need_dx`` True, the plain call."""
    if need_dx:
        return layer.backward(cache, d_outputs)
    cls = type(layer)
    takes = _TAKES_NEED_DX.get(cls)
    if takes is None:
        try:
            takes = "need_dx" in inspect.signature(cls.backward).parameters
        except (TypeError, ValueError):
            takes = False
        _TAKES_NEED_DX[cls] = takes
    if takes:
        return layer.backward(cache, d_outputs, need_dx=False)
    return layer.backward(cache, d_outputs)


def restoring() -> bool:
    """Whether layers are being built by ``weights_from`` in this thread.

    Returns:
        True inside a ``weights_from`` block of this thread, else False.
    """
    return getattr(_RESTORE, "provider", None) is not None


class Layer:
    """Base class of all crnn layers.

    A layer keeps its weights as NumPy arrays (updated in place by the optimizers) and runs
    in two steps that a model drives: ``forward(x, training=False, mask=None)`` returns
    ``(outputs, cache)``, and ``backward(cache, d_outputs)`` returns ``(dx, grads)``, with
    ``grads`` aligned with ``trainable_weights``. Calling a layer on an array (``layer(x)``)
    builds it on first use (``build(x.shape)`` creates the weights) and returns the outputs.
    A subclass overrides ``build`` (creating its weights with ``add_weight``),
    ``compute_output_shape``, ``forward``, ``backward`` and ``get_config``.

    Args:
        name: the layer's name. Default None: a unique snake_case name from the class
            (``dense``, ``dense_1``...).
        trainable: whether ``fit`` updates the layer's weights. Default True.
        dtype: the layer's float dtype, ``"float32"`` (default, also for None) or
            ``"float64"``.
        input_shape: the input shape without the batch axis, e.g. ``(timesteps, features)``
            (only meaningful on the first layer of a ``Sequential`` model). Default None.
        batch_input_shape: the full input shape, ``(batch, timesteps, features)``; the
            Keras 2 way to declare the batch size that stateful layers need. Default None.
        batch_size: the batch size to go with ``input_shape``. Default None.
        input_dim: the Keras 2 shorthand for ``input_shape=(input_dim,)``. Default None.
        **kwargs: ``activity_regularizer`` (a penalty on the layer's outputs, divided by
            the batch size, as Keras 3), and the ``<family>_regularizer`` /
            ``<family>_constraint`` arguments of the weight families the layer has
            (``kernel``, ``recurrent``, ``bias`` or ``embeddings``, e.g.
            ``kernel_regularizer`` for ``Dense``); None values are ignored.

    Call arguments:
        inputs: the input array (anything ``np.asarray`` accepts), batch axis first.
        training: whether to run in training mode (dropout active, batch statistics).
            Default False.
        mask: optional boolean mask of the timesteps, ``(batch, timesteps)``; layers that
            don't use masks ignore it.

    Raises:
        TypeError: for an unknown keyword argument.
        ValueError: if ``name`` is not a non-empty string, ``dtype`` is not float32 or
            float64, a shape holds anything but positive ints (or None), ``batch_size`` is
            not a positive int, or a regularizer is not recognized.
        NotImplementedError: for a ``<family>_regularizer``/``<family>_constraint`` of a
            weight family the layer doesn't have.

    Example:
        >>> import numpy as np
        >>> from crnn.layers import Layer
        >>> class Double(Layer):
        ...     def forward(self, x, training=False, mask=None):
        ...         return 2 * np.asarray(x, self.dtype), None
        ...     def backward(self, cache, d_outputs):
        ...         return 2 * d_outputs, []
        >>> layer = Double()
        >>> y = layer(np.zeros((2, 5, 3), "float32"))
        >>> y.shape, layer.output_shape
        ((2, 5, 3), (2, 5, 3))
    """

    #: Whether the layer passes an incoming mask on unchanged (Dense, Dropout...).
    supports_masking = False

    #: Weight families that take ``<prefix>_regularizer``/``<prefix>_constraint`` arguments
    #: (``"kernel"``, ``"recurrent"``, ``"bias"``, ``"embeddings"``), set by each layer class.
    _regularizable = ()

    def __init__(self, name: str | None = None, trainable: bool = True,
                 dtype: DTypeLike = None, input_shape: Sequence[int | None] | None = None,
                 batch_input_shape: Sequence[int | None] | None = None,
                 batch_size: int | None = None, input_dim: int | None = None,
                 **kwargs: Any):
        from crnn import regularizers

        # Keras 3's activity regularizer: a penalty on the outputs (see _activity_penalty).
        self.activity_regularizer = regularizers.get(kwargs.pop("activity_regularizer", None))
        self._rule_config = _pop_weight_rules(type(self), kwargs)
        self._rules = []            # (array, regularizer, constraint) per weight that has one
        if kwargs:
            raise TypeError(
                f"{type(self).__name__}() got unexpected keyword argument(s) "
                f"{sorted(kwargs)}; check the spelling against the Keras documentation"
            )
        if name is None:
            name = unique_name(_snake_case(type(self).__name__))
        if not isinstance(name, str) or not name:
            raise ValueError(f"name must be a non-empty string, received {name!r}")
        self.name = name
        self.trainable = bool(trainable)
        dtype = "float32" if dtype is None else np.dtype(dtype).name
        if dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', received {dtype!r}")
        self.dtype = dtype
        self._batch_input_shape = None
        if input_dim is not None and input_shape is None:
            input_shape = (input_dim,)
        if batch_input_shape is not None:
            self._batch_input_shape = _shape_tuple("batch_input_shape", batch_input_shape)
        elif input_shape is not None:
            shape = _shape_tuple("input_shape", input_shape, allow_none_first=True)
            if batch_size is not None:
                batch_size = check_positive_int("batch_size", batch_size)
            self._batch_input_shape = (batch_size,) + shape
        self.built = False
        self.input_shape = None
        self.output_shape = None
        self._weights = []          # list of (name, array, trainable)

    # ------------------------------------------------------------------ weights

    def _weight_rules(self):
        """``(array, regularizer, constraint)`` for every weight with one, nested layers too."""
        rules = list(self._rules)
        inner = getattr(self, "_inner_layers", None)
        for layer in (inner() if inner else []):
            rules.extend(layer._weight_rules())
        return rules

    def _register_rules(self, name, value):
        prefix = "recurrent" if name == "recurrent_kernel" else name
        regularizer = self._rule_config.get(f"{prefix}_regularizer")
        constraint = self._rule_config.get(f"{prefix}_constraint")
        if regularizer is not None or constraint is not None:
            self._rules.append((value, regularizer, constraint))

    def add_weight(self, name: str, shape: Sequence[int], initializer: Any = "zeros",
                   trainable: bool = True) -> np.ndarray:
        """Create a weight array and register it on the layer (from ``build``).

        Args:
            name: the weight's name, e.g. ``"kernel"``.
            shape: the weight's shape.
            initializer: anything ``crnn.initializers.get`` accepts, or a ready array.
                Default ``"zeros"``.
            trainable: whether training updates the weight. Default True.

        Returns:
            The new C-contiguous array, in the layer's dtype (the file's array when built
            inside ``weights_from``).

        Raises:
            ValueError: if the layer is already built, the initializer is not recognized,
                or it returns an array of another shape.
        """
        if self.built:
            # A second build() would append a second set of weights and silently change
            # get_weights()/set_weights(); Keras refuses it too.
            raise ValueError(
                f"layer {self.name!r} is already built, so it can't create weight {name!r} "
                f"again; build() runs once per layer. Create a new layer to use other input "
                f"shapes"
            )
        provider = getattr(_RESTORE, "provider", None)
        if provider is not None:
            value = provider(f"{self.name}/{name}", tuple(shape), np.dtype(self.dtype))
            self._weights.append((name, value, trainable))
            self._register_rules(name, value)
            return value
        if isinstance(initializer, np.ndarray):
            value = initializer
        else:
            init = initializers.get(initializer)
            value = np.asarray(init(tuple(shape), dtype=self.dtype), dtype=self.dtype)
        if value.shape != tuple(shape):
            raise ValueError(
                f"initializer for {self.name}/{name} returned shape {value.shape}, "
                f"expected {tuple(shape)}"
            )
        value = np.array(value, dtype=self.dtype, order="C")
        self._weights.append((name, value, trainable))
        self._register_rules(name, value)
        return value

    @property
    def weights(self) -> list[np.ndarray]:
        """All weight arrays, in Keras's order."""
        return [w for _, w, _ in self._all_weight_entries()]

    @property
    def trainable_weights(self) -> list[np.ndarray]:
        """The weight arrays that training updates (none when ``trainable`` is False)."""
        if not self.trainable:
            return []
        return [w for _, w, t in self._all_weight_entries() if t]

    @property
    def non_trainable_weights(self) -> list[np.ndarray]:
        """The weight arrays that training leaves alone."""
        if not self.trainable:
            return self.weights
        return [w for _, w, t in self._all_weight_entries() if not t]

    def _all_weight_entries(self):
        return list(self._weights)

    def get_weights(self) -> list[np.ndarray]:
        """Copies of the weights, in Keras's order and shapes.

        Returns:
            A list of arrays (empty for a layer without weights or not built yet).
        """
        return [np.array(w) for w in self.weights]

    def set_weights(self, weights: Sequence[ArrayLike]) -> None:
        """Copy ``weights`` into the layer's arrays in place, shape-checked, all or nothing.

        Args:
            weights: a list of arrays in ``get_weights`` order and shapes; each is
                converted to its weight's dtype.

        Raises:
            TypeError: if ``weights`` is not a list of arrays, or an array is not numeric.
            ValueError: if the number of arrays or a shape differs from the layer's.
        """
        assign_weights(f"layer {self.name!r}", self.weights, weights)

    def count_params(self) -> int:
        """The number of weights (scalars) in the layer.

        Returns:
            The total size of the weight arrays.

        Raises:
            ValueError: if the layer is not built yet.
        """
        if not self.built:
            raise ValueError(
                f"layer {self.name!r} is not built yet, so its parameters don't exist; "
                f"call it on data or give the model an input shape first"
            )
        return int(sum(w.size for w in self.weights))

    # ------------------------------------------------------------------ building

    def build(self, input_shape: Sequence[int | None]) -> None:
        """Create the weights for inputs of ``input_shape``; the layer is then built.

        Called once, by the first call or by the model. Sets ``input_shape``,
        ``output_shape`` and ``built``.

        Args:
            input_shape: the input shape, batch axis first (None for an unknown size).
        """
        self.input_shape = tuple(input_shape)
        self.output_shape = self.compute_output_shape(self.input_shape)
        self.built = True

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        """The output shape for inputs of ``input_shape``.

        Args:
            input_shape: the input shape, batch axis first (None for an unknown size).

        Returns:
            The output shape, batch axis first.
        """
        return tuple(input_shape)

    def compute_mask(self, inputs: ArrayLike, mask: ArrayLike | None = None) -> np.ndarray | None:
        """The mask that goes with this layer's outputs, for the next layer.

        Args:
            inputs: the layer's inputs.
            mask: the incoming mask, ``(batch, timesteps)`` booleans, or None.

        Returns:
            The outgoing mask (boolean array), or None for no mask.
        """
        return mask if self.supports_masking else None

    def _ensure_built(self, x):
        if not self.built:
            with BUILD_LOCK:        # one build even when threads make the first call at once
                if not self.built:
                    self.build(tuple(np.shape(x)))

    def _fixed_input_axes(self, ndim):
        """The axes of an ``ndim``-d input whose sizes the weights fix (the features axis).

        A model checks these against its declared input shape; other axes (the batch, the
        timesteps) may vary from call to call.
        """
        return (ndim - 1,)

    @property
    def _single_output(self):
        """Whether ``forward`` returns one array (what a ``Sequential`` layer must do)."""
        return True

    @property
    def _has_states(self):
        """Whether the layer carries states from batch to batch (a stateful RNN)."""
        return False

    # ------------------------------------------------------------------ running

    def forward(self, x: ArrayLike, training: bool = False,
                mask: ArrayLike | None = None) -> tuple[Any, Any]:
        """Compute the outputs of a built layer, and what ``backward`` needs.

        Every layer implements it (the base class raises ``NotImplementedError``).

        Args:
            x: the inputs, batch axis first.
            training: whether to run in training mode (dropout active, batch
                statistics). Default False.
            mask: optional ``(batch, timesteps)`` booleans; ignored by layers that don't
                use masks.

        Returns:
            ``(outputs, cache)``: the output array (a list of arrays for a layer with
            several outputs) and the cache to pass to ``backward``.
        """
        raise NotImplementedError

    def backward(self, cache: Any, d_outputs: Any, *,
                 need_dx: bool = True) -> tuple[Any, list[Any]]:
        """Backpropagate through the layer: the gradients of the inputs and the weights.

        Every layer implements it (the base class raises ``NotImplementedError``).

        Args:
            cache: what ``forward`` returned with the outputs (with ``training=True``
                where the layer needs it).
            d_outputs: the gradient of the loss with respect to the outputs.
            need_dx: whether the caller needs the inputs' gradient. False lets the layer
                skip computing it and return None in its place (the weights' gradients
                are the same either way). Default True. A subclass may leave this keyword
                out of its ``backward``: models then always ask it for ``dx``.

        Returns:
            ``(dx, grads)``: the gradient with respect to the inputs (may be None with
            ``need_dx=False``), and the weights' gradients aligned with
            ``trainable_weights`` (empty when not trainable).
        """
        raise NotImplementedError

    def _activity_penalty(self, outputs):
        """The activity loss of ``outputs``, as Keras 3: the regularizer's penalty divided
        by the batch size (0 without a regularizer)."""
        if self.activity_regularizer is None or not outputs.shape[0]:
            return 0.0
        return self.activity_regularizer(outputs) / outputs.shape[0]

    def _activity_gradient(self, outputs):
        """The gradient of ``_activity_penalty`` with respect to ``outputs``."""
        return self.activity_regularizer.gradient(outputs) / outputs.dtype.type(outputs.shape[0])

    def _grads_for_trainable(self, grads):
        """Drop the gradients of frozen weights so they match ``trainable_weights``."""
        if not self.trainable:
            return []
        entries = self._all_weight_entries()
        return [g for (_, _, t), g in zip(entries, grads) if t]

    def __call__(self, inputs: ArrayLike, training: bool = False,
                 mask: ArrayLike | None = None, **kwargs: Any) -> Any:
        """Run the layer on a NumPy array (building it on first use); return an array.

        Args:
            inputs: the inputs, batch axis first.
            training: whether to run in training mode. Default False.
            mask: optional ``(batch, timesteps)`` booleans.
            **kwargs: further arguments of the layer's ``forward``.

        Returns:
            The outputs (a list of arrays for a layer with several outputs).
        """
        self._ensure_built(inputs)
        outputs, _ = self.forward(inputs, training=training, mask=mask, **kwargs)
        return outputs

    # ------------------------------------------------------------------ states

    def reset_states(self, states: Sequence[ArrayLike] | None = None) -> None:
        """Reset a stateful layer's states; stateless layers have nothing to reset.

        Args:
            states: new states (None for zeros); ignored by stateless layers.
        """

    def _state_arrays(self):
        """Current RNN states of stateful layers (for saving); empty otherwise."""
        return []

    def _set_state_arrays(self, arrays):
        if arrays:
            raise ValueError(f"layer {self.name!r} holds no states, received {len(arrays)}")

    # ------------------------------------------------------------------ config

    def get_config(self) -> dict[str, Any]:
        """The layer's constructor arguments, to rebuild it with ``from_config``.

        Returns:
            A JSON-friendly dict, in Keras's keys.
        """
        config = {"name": self.name, "trainable": self.trainable, "dtype": self.dtype}
        if self._batch_input_shape is not None:
            config["batch_input_shape"] = list(self._batch_input_shape)
        config.update(_serialize_weight_rules(self._rule_config))
        if self.activity_regularizer is not None:
            from crnn import regularizers

            config["activity_regularizer"] = regularizers.serialize(self.activity_regularizer)
        return config

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Layer:
        """Create a layer from its config (``get_config``'s output, or Keras 3's).

        Args:
            config: the constructor arguments, as ``get_config`` returns them.

        Returns:
            A new layer of this class; its weights are created anew when it is built
            (copy trained ones in with ``set_weights``).
        """
        config = _from_keras_config(config)
        if "batch_input_shape" in config and config["batch_input_shape"] is not None:
            config["batch_input_shape"] = tuple(config["batch_input_shape"])
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r} built={self.built}>"


class InputLayer(Layer):
    """Declares a model's input shape; holds no weights and passes data through.

    Usually made with ``crnn.Input``. The layer is built at construction.

    Args:
        shape: the input shape without the batch axis, e.g. ``(timesteps, features)``.
            Default None.
        batch_size: the batch size (needed by stateful layers), or None (default).
        dtype: the input dtype (default None: ``"float32"``; ``"int32"``/``"int64"`` for
            ``Embedding`` inputs).
        batch_shape: the full shape including the batch axis, instead of ``shape`` and
            ``batch_size``. Default None.
        name: the layer name. Default None: a unique name.
        sparse: Keras's sparse-input flag; only None or False (default None) is accepted.
        **kwargs: the Keras 2 spellings ``input_shape`` (for ``shape``) and
            ``batch_input_shape`` (for ``batch_shape``), and base ``Layer`` arguments.

    Input shape:
        Any array of the declared shape.

    Output shape:
        The same as the input: ``batch_shape``, or ``(batch_size,) + shape``.

    Raises:
        ValueError: if ``sparse`` is true, neither or both of ``shape`` and ``batch_shape``
            are given, or a shape holds anything but positive ints (or None).

    Example:
        >>> import numpy as np
        >>> from crnn.layers import InputLayer
        >>> layer = InputLayer(shape=(5, 3))
        >>> layer.batch_shape
        (None, 5, 3)
        >>> layer(np.zeros((2, 5, 3), "float32")).shape
        (2, 5, 3)
    """

    def __init__(self, shape: Sequence[int | None] | None = None,
                 batch_size: int | None = None, dtype: DTypeLike = None,
                 batch_shape: Sequence[int | None] | None = None, name: str | None = None,
                 sparse: bool | None = None, **kwargs: Any):
        input_shape = kwargs.pop("input_shape", None)
        if shape is None and input_shape is not None:
            shape = input_shape
        if "batch_input_shape" in kwargs and batch_shape is None:
            batch_shape = kwargs.pop("batch_input_shape")
        if sparse:
            raise ValueError("sparse inputs are not supported by crnn; received sparse=True")
        if batch_shape is None and shape is None:
            raise ValueError(
                "Input needs a shape: pass shape=(timesteps, features) (with batch_size=... "
                "for stateful models) or batch_shape=(batch, timesteps, features)"
            )
        if batch_shape is not None and shape is not None:
            raise ValueError(
                "pass either shape (with batch_size) or batch_shape to Input, not both")
        self.input_dtype = "float32" if dtype is None else np.dtype(dtype).name
        super().__init__(name=name, input_shape=shape, batch_input_shape=batch_shape,
                         batch_size=batch_size, **kwargs)
        self.batch_shape = self._batch_input_shape
        self.build(self.batch_shape)

    def forward(self, x: ArrayLike, training: bool = False,
                mask: ArrayLike | None = None) -> tuple[Any, Any]:
        return x, None

    def backward(self, cache: Any, d_outputs: Any, *,
                 need_dx: bool = True) -> tuple[Any, list[Any]]:
        return d_outputs, []

    def get_config(self) -> dict[str, Any]:
        return {"batch_shape": list(self.batch_shape), "dtype": self.input_dtype,
                "name": self.name}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> InputLayer:
        config = _from_keras_config(config)
        config.pop("ragged", None)
        return cls(**config)


# Entries of a Keras 3 layer config that crnn has no use for when they hold their
# "off" value (None/False/0), so that ``from_config(keras_layer.get_config())`` works.
_KERAS_ONLY_KEYS = (
    "kernel_regularizer", "recurrent_regularizer", "bias_regularizer",
    "activity_regularizer", "embeddings_regularizer", "kernel_constraint",
    "recurrent_constraint", "bias_constraint", "embeddings_constraint",
    "quantization_config", "lora_rank", "lora_alpha", "sparse", "ragged", "optional",
)


def _from_keras_config(config):
    """A copy of ``config`` with Keras 3's serialization details reduced to crnn's form.

    Keras writes the dtype as a ``DTypePolicy`` dict and lists regularizers, constraints
    and quantization settings even when unused; crnn drops the unused ones (a used one
    still reaches the layer, which rejects it with a clear error).
    """
    config = dict(config)
    dtype = config.get("dtype")
    if isinstance(dtype, dict):
        config["dtype"] = (dtype.get("config") or {}).get("name", "float32")
    for key in _KERAS_ONLY_KEYS:
        if key in config and not config[key]:
            del config[key]
    for key, value in config.items():
        if key.endswith("_initializer") and isinstance(value, dict) and "config" in value:
            # Keras 3.15's variance-scaling initializers add input_axes/output_axes
            # (None: the default fan computation, which crnn uses).
            inner = {k: v for k, v in (value["config"] or {}).items()
                     if not (k in ("input_axes", "output_axes") and v is None)}
            config[key] = {"class_name": value["class_name"], "config": inner}
    return config


def Input(shape: Sequence[int | None] | None = None, batch_size: int | None = None,
          dtype: DTypeLike = None, batch_shape: Sequence[int | None] | None = None,
          name: str | None = None, **kwargs: Any) -> InputLayer:
    """Declare a model input, as ``keras.Input``: put it first in a ``Sequential`` model.

    Args:
        shape: the input shape without the batch axis, e.g. ``(timesteps, features)``.
            Default None.
        batch_size: optional fixed batch size (stateful models need one). Default None.
        dtype: input dtype. Default None: ``"float32"``.
        batch_shape: full shape ``(batch, timesteps, features)`` instead of the two above.
            Default None.
        name: optional name. Default None: a unique name.
        **kwargs: further ``InputLayer`` arguments (``sparse``, the Keras 2 spellings).

    Returns:
        An ``InputLayer``, already built.

    Raises:
        ValueError: if neither or both of ``shape`` and ``batch_shape`` are given, or a
            shape holds anything but positive ints (or None).

    Example:
        >>> import crnn
        >>> model = crnn.Sequential([crnn.Input(batch_shape=(4, 10, 3)),
        ...                          crnn.layers.LSTM(8, stateful=True)])
        >>> model.output_shape
        (4, 8)
    """
    return InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, batch_shape=batch_shape,
                      name=name, **kwargs)


def _pop_weight_rules(cls, kwargs):
    """Take the ``*_regularizer``/``*_constraint`` arguments a layer class accepts out of
    ``kwargs`` (crnn.regularizers / crnn.constraints objects); families the class doesn't
    have are refused."""
    from crnn import constraints, regularizers

    rules = {}
    for key in [k for k in kwargs if k.endswith(("_regularizer", "_constraint"))]:
        prefix, kind = key.rsplit("_", 1)
        if kwargs[key] is None:
            kwargs.pop(key)
            continue
        if prefix not in cls._regularizable:
            raise NotImplementedError(
                f"{cls.__name__}: {key}={kwargs[key]!r} is not supported by crnn"
                + (f"; this layer takes {', '.join(p + '_' + kind for p in cls._regularizable)}"
                   if cls._regularizable else "")
            )
        value = kwargs.pop(key)
        rules[key] = regularizers.get(value) if kind == "regularizer" else constraints.get(value)
    return rules


def _serialize_weight_rules(rules):
    from crnn import constraints, regularizers

    return {key: (regularizers.serialize(value) if key.endswith("_regularizer")
                  else constraints.serialize(value)) for key, value in rules.items()}
