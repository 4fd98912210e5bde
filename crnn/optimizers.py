"""Optimizers with Keras 3's update rules, defaults and gradient clipping.

An optimizer updates a fixed list of NumPy parameter arrays in place::

    opt = Adam(learning_rate=1e-3, clipnorm=1.0)
    opt.apply(params, grads)   # params[i] -= ... for every i

Its slot arrays (momentums, velocities, ...) are created on the first ``apply``,
one per parameter, in the parameter's dtype. Every later call must pass the same
number of arrays with the same shapes, in the same order.

Each ``apply`` first clips the gradients (at most one of ``clipnorm``,
``clipvalue`` and ``global_clipnorm``):

- ``clipnorm=c``: each gradient ``g`` becomes ``g * c / max(||g||, c)``, its own
  L2 norm, so each is clipped separately (Keras 3 semantics);
- ``global_clipnorm=c``: every gradient is multiplied by
  ``c / max(N, c)``, with ``N`` the L2 norm of all gradients together;
- ``clipvalue=c``: each element is clipped to ``[-c, c]``.

It then runs the optimizer's update with ``t = iterations + 1`` and increments
``iterations``.
"""

import numpy as np

from crnn._validation import is_number as _is_number

__all__ = ["Optimizer", "IndexedSlices", "SGD", "RMSprop", "Adam", "Adagrad", "get", "serialize", "deserialize"]




def _check_positive(name, value, allow_none=False):
    if value is None and allow_none:
        return None
    if not _is_number(value) or not np.isfinite(value) or value <= 0:
        raise ValueError(
            f"Argument `{name}` must be a positive finite float. Received: {name}={value!r}."
        )
    return float(value)


def _check_range(name, value, low, high, low_open=False, high_open=False):
    ok = _is_number(value) and np.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (
            value < high if high_open else value <= high
        )
    if not ok:
        interval = ("(" if low_open else "[") + f"{low}, {high}" + (")" if high_open else "]")
        raise ValueError(f"Argument `{name}` must be a float in {interval}. Received: {name}={value!r}.")
    return float(value)


def _via_float32(value, dtype):
    # Keras's ops.cast turns a Python float into a float32 tensor before casting
    # it to the variable's dtype; float64 parameters see the rounded value.
    return dtype(np.float32(value))


class IndexedSlices:
    """A sparse gradient: row ``values[k]`` adds to row ``indices[k]`` of the parameter.

    This is the gradient of a row gather, such as an ``Embedding`` lookup, in the
    form TensorFlow gives it to Keras optimizers. It matters only for clipping:
    Keras on TensorFlow applies ``clipnorm``, ``clipvalue`` and
    ``global_clipnorm`` to the rows *before* rows with the same index are summed
    (so a token seen three times contributes three rows to the norm). Passing a
    dense gradient instead gives the clipping of Keras's JAX and PyTorch
    backends, which sum first. Without clipping both are identical.

    Args:
        values: Array of shape ``(n, *dense_shape[1:])``.
        indices: Integer array of shape ``(n,)``, row indices into the parameter.
        dense_shape: Shape of the parameter.

    Example:

    >>> g = IndexedSlices(np.ones((3, 2)), np.array([1, 1, 0]), (4, 2))
    >>> g.to_dense().tolist()
    [[1.0, 1.0], [2.0, 2.0], [0.0, 0.0], [0.0, 0.0]]
    """

    def __init__(self, values, indices, dense_shape):
        self.values = np.asarray(values)
        self.indices = np.asarray(indices)
        self.dense_shape = tuple(int(d) for d in dense_shape)
        if self.indices.ndim != 1 or self.indices.dtype.kind not in "iu":
            raise ValueError(
                f"`indices` must be a 1-D integer array. Received shape {self.indices.shape}, "
                f"dtype {self.indices.dtype}."
            )
        if self.values.shape != (len(self.indices),) + self.dense_shape[1:]:
            raise ValueError(
                f"`values` must have shape {(len(self.indices),) + self.dense_shape[1:]} for "
                f"{len(self.indices)} indices and dense_shape={self.dense_shape}. Received: "
                f"{self.values.shape}."
            )
        if len(self.indices) and (self.indices.min() < 0 or self.indices.max() >= self.dense_shape[0]):
            raise ValueError(f"`indices` must lie in [0, {self.dense_shape[0]}).")

    def _densify(self, values, dtype):
        dense = np.zeros(self.dense_shape, dtype=dtype)
        np.add.at(dense, self.indices, values)
        return dense

    def to_dense(self, dtype=None):
        """Returns the dense gradient (repeated indices summed)."""
        return self._densify(self.values, dtype or self.values.dtype)


class Optimizer:
    """Base class: holds the learning rate, clipping, iteration count and slots.

    Subclasses declare their slot names in ``_slot_names()`` and implement
    ``_update(param, grad, slots, lr, step)``.

    Args:
        learning_rate: Positive float.
        clipnorm: Optional positive float: clip each gradient to this L2 norm.
        clipvalue: Optional positive float: clip each gradient element to
            ``[-clipvalue, clipvalue]``.
        global_clipnorm: Optional positive float: scale all gradients together
            so that their joint L2 norm is at most this value.
        name: Optional name; defaults to the lower-case class name.

    Attributes:
        iterations: Number of ``apply`` calls so far (int).

    Raises:
        ValueError: If an argument is out of range, or more than one clipping
            option is set.
    """

    def __init__(self, learning_rate, clipnorm=None, clipvalue=None, global_clipnorm=None, name=None):
        self.learning_rate = _check_positive("learning_rate", learning_rate)
        clip_args = {"clipnorm": clipnorm, "clipvalue": clipvalue, "global_clipnorm": global_clipnorm}
        if sum(v is not None for v in clip_args.values()) > 1:
            raise ValueError(
                "Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set. Received: "
                f"clipnorm={clipnorm}, clipvalue={clipvalue}, global_clipnorm={global_clipnorm}. "
                "Keep one and set the others to None."
            )
        self.clipnorm = _check_positive("clipnorm", clipnorm, allow_none=True)
        self.clipvalue = _check_positive("clipvalue", clipvalue, allow_none=True)
        self.global_clipnorm = _check_positive("global_clipnorm", global_clipnorm, allow_none=True)
        if name is not None and not isinstance(name, str):
            raise ValueError(f"Argument `name` must be a string or None. Received: name={name!r}.")
        self.name = name if name is not None else type(self).__name__.lower()
        self.iterations = 0
        self._shapes = None
        self._slots = None  # dict: slot name -> list of arrays, one per parameter

    # ----------------------------------------------------------------- hooks
    def _slot_names(self):
        """Names of the per-parameter state arrays, in saving order."""
        return []

    def _slot_initial_value(self, slot_name):
        return 0.0

    def _update(self, param, grad, slots, lr, step):
        """Updates ``param`` in place; ``slots`` maps slot name to its array."""
        raise NotImplementedError

    # ------------------------------------------------------------------- API
    @property
    def built(self):
        """Whether the slots exist (after the first ``apply`` or ``set_state``)."""
        return self._shapes is not None

    def build(self, params):
        """Creates the slot arrays for ``params`` (zeros, or Adagrad's initial value).

        ``apply`` calls this on its first call; call it yourself only to create the
        slots before loading a state.

        Args:
            params: List of NumPy arrays, the parameters to optimize.
        """
        params = self._check_params(params)
        self._shapes = [(p.shape, p.dtype) for p in params]
        self._slots = {
            name: [np.full(p.shape, self._slot_initial_value(name), dtype=p.dtype) for p in params]
            for name in self._slot_names()
        }

    def apply(self, params, grads):
        """Clips ``grads`` and updates each ``params[i]`` in place.

        Args:
            params: List of floating NumPy arrays, always the same ones in the
                same order. They are modified in place.
            grads: List of arrays with the same shapes (``None`` entries are
                skipped, as Keras skips missing gradients), or ``IndexedSlices``
                for gathered parameters such as embeddings.

        Raises:
            ValueError: If the lists differ in length, a shape differs from the
                parameter's or from the first call's, or every gradient is None.
        """
        params = list(params)
        grads = list(grads)
        if len(params) != len(grads):
            raise ValueError(
                f"`params` and `grads` must have the same length. Received: len(params)={len(params)}, "
                f"len(grads)={len(grads)}."
            )
        if not self.built:
            self.build(params)
        else:
            self._check_params(params)
            if len(params) != len(self._shapes):
                raise ValueError(
                    f"This optimizer was built for {len(self._shapes)} parameters; received "
                    f"{len(params)}. Use a new optimizer for a different set of parameters."
                )
            for i, (p, (shape, _)) in enumerate(zip(params, self._shapes)):
                if p.shape != shape:
                    raise ValueError(
                        f"Parameter {i} has shape {p.shape}, but this optimizer was built with shape "
                        f"{shape}. Pass the parameters in the same order on every call, or use a new "
                        "optimizer."
                    )
        pairs = []
        for i, (p, g) in enumerate(zip(params, grads)):
            if g is None:
                continue
            if isinstance(g, IndexedSlices):
                if g.dense_shape != p.shape:
                    raise ValueError(
                        f"Gradient {i} (IndexedSlices) has dense_shape {g.dense_shape}, but parameter "
                        f"{i} has shape {p.shape}."
                    )
                pairs.append((i, g, g.values.astype(p.dtype, copy=False)))
                continue
            g = np.asarray(g)
            if g.shape != p.shape:
                raise ValueError(
                    f"Gradient {i} has shape {g.shape}, but parameter {i} has shape {p.shape}. "
                    "Each gradient must have its parameter's shape."
                )
            pairs.append((i, None, g.astype(p.dtype, copy=False)))
        if not pairs:
            raise ValueError("No gradients provided for any parameter (all entries of `grads` are None).")
        # Like Keras on TensorFlow, clipping sees the rows of an IndexedSlices
        # gradient one by one, before repeated indices are summed.
        clipped = self._clip([values for _, _, values in pairs])
        dense = []
        for (i, slices, _), values in zip(pairs, clipped):
            dense.append(values if slices is None else slices._densify(values, params[i].dtype))
        step = self.iterations + 1
        # Keras keeps the learning rate in a float32 variable, so float64
        # parameters see its float32-rounded value too.
        lr = float(np.float32(self.learning_rate))
        for (i, _, _), g in zip(pairs, dense):
            slots = {name: arrays[i] for name, arrays in self._slots.items()}
            self._update(params[i], g, slots, lr, step)
        self.iterations += 1

    def _check_params(self, params):
        params = list(params)
        for i, p in enumerate(params):
            if not isinstance(p, np.ndarray) or p.dtype.kind != "f":
                raise ValueError(
                    f"Parameter {i} must be a floating NumPy array (updated in place). Received: "
                    f"{type(p).__name__} with dtype {getattr(p, 'dtype', None)}."
                )
            if not p.flags.writeable:
                raise ValueError(f"Parameter {i} is read-only; the optimizer updates parameters in place.")
        return params

    def _clip(self, grads):
        if self.clipnorm is not None:
            out = []
            for g in grads:
                norm = np.sqrt(np.sum(np.square(g)))
                out.append(g * g.dtype.type(self.clipnorm) / np.maximum(norm, g.dtype.type(self.clipnorm)))
            return out
        if self.global_clipnorm is not None:
            # Computed in the gradients' precision, in Keras's order, for parity.
            dt = np.result_type(*grads).type
            norm = np.sqrt(np.sum(np.stack([np.sum(np.square(g)) for g in grads]).astype(dt)))
            c = dt(self.global_clipnorm)
            with np.errstate(divide="ignore", invalid="ignore"):
                scale = c * np.minimum(dt(1) / norm, dt(1) / c)
                # A non-finite norm makes every gradient NaN, as in Keras, rather
                # than silently applying an unclipped update.
                scale = scale + (norm - norm)
            return [g * scale.astype(g.dtype) for g in grads]
        if self.clipvalue is not None:
            return [np.clip(g, -self.clipvalue, self.clipvalue) for g in grads]
        return grads

    def get_config(self):
        """Returns the constructor arguments as a JSON-serializable dict."""
        return {
            "name": self.name,
            "learning_rate": self.learning_rate,
            "clipnorm": self.clipnorm,
            "clipvalue": self.clipvalue,
            "global_clipnorm": self.global_clipnorm,
        }

    @classmethod
    def from_config(cls, config):
        """Creates an optimizer (without state) from ``get_config()``'s output."""
        return cls(**config)

    def get_state(self):
        """Returns the optimizer state as a list of arrays.

        Returns:
            ``[np.array(iterations, dtype=int64)]`` followed by each slot's arrays,
            slot by slot in ``_slot_names()`` order, parameter by parameter.
            Before the first ``apply`` it is just the iteration count.
        """
        state = [np.array(self.iterations, dtype=np.int64)]
        if self.built:
            for name in self._slot_names():
                state.extend(a.copy() for a in self._slots[name])
        return state

    def set_state(self, state):
        """Restores a state returned by ``get_state``.

        If the optimizer is not built yet, the slot shapes are taken from
        ``state`` (so it must come from an optimizer of the same class and
        configuration); otherwise they must match the current ones.

        Args:
            state: List of arrays as returned by ``get_state``.

        Raises:
            ValueError: If the number of arrays or a shape does not match.
        """
        state = list(state)
        if not state:
            raise ValueError("`state` must start with the iteration count; received an empty list.")
        iterations = np.asarray(state[0])
        if iterations.ndim != 0 or iterations.dtype.kind not in "iuf" or int(iterations) != iterations:
            raise ValueError(f"state[0] must be the integer iteration count. Received: {state[0]!r}.")
        arrays = [np.asarray(a) for a in state[1:]]
        names = self._slot_names()
        if not arrays and not self.built:
            self.iterations = int(iterations)
            return
        if not self.built:
            if not names or len(arrays) % len(names):
                raise ValueError(
                    f"Cannot split {len(arrays)} slot arrays among the {len(names)} slots "
                    f"{names} of {type(self).__name__}. Was the state saved by another optimizer "
                    "or configuration?"
                )
            n = len(arrays) // len(names)
            self._shapes = [(a.shape, a.dtype if a.dtype.kind == "f" else np.dtype("float32")) for a in arrays[:n]]
        expected = len(names) * len(self._shapes)
        if len(arrays) != expected:
            raise ValueError(
                f"{type(self).__name__} expects {expected} slot arrays ({len(names)} slots "
                f"{names} x {len(self._shapes)} parameters); received {len(arrays)}. Was the state "
                "saved by another optimizer or configuration?"
            )
        slots = {}
        for k, name in enumerate(names):
            slot_list = []
            for i, (shape, dtype) in enumerate(self._shapes):
                a = arrays[k * len(self._shapes) + i]
                if a.shape != shape:
                    raise ValueError(
                        f"Slot {name!r} of parameter {i} has shape {a.shape} in `state`; expected {shape}."
                    )
                slot_list.append(np.array(a, dtype=dtype))
            slots[name] = slot_list
        self._slots = slots
        self.iterations = int(iterations)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Stochastic gradient descent, with optional (Nesterov) momentum.

    Keras 3's rule, with velocity ``m`` (zeros at first):

    - ``momentum == 0``: ``p -= lr * g``;
    - otherwise ``m = momentum * m - lr * g``, then ``p += m``, or with
      ``nesterov=True`` ``p += momentum * m - lr * g`` (using the new ``m``).

    Args:
        learning_rate: Positive float. Defaults to 0.01.
        momentum: Float in [0, 1]. Defaults to 0.0.
        nesterov: Whether to use Nesterov momentum. Defaults to False.
        clipnorm, clipvalue, global_clipnorm, name: See ``Optimizer``.

    Example:

    >>> p = np.array([1.0])
    >>> SGD(learning_rate=0.1).apply([p], [np.array([2.0])])
    >>> p
    array([0.8])
    """

    def __init__(
        self,
        learning_rate=0.01,
        momentum=0.0,
        nesterov=False,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        name=None,
    ):
        super().__init__(learning_rate, clipnorm, clipvalue, global_clipnorm, name)
        self.momentum = _check_range("momentum", momentum, 0.0, 1.0)
        if not isinstance(nesterov, (bool, np.bool_)):
            raise ValueError(f"Argument `nesterov` must be a bool. Received: nesterov={nesterov!r}.")
        self.nesterov = bool(nesterov)

    def _slot_names(self):
        return ["momentum"] if self.momentum != 0 else []

    def _update(self, param, grad, slots, lr, step):
        dt = param.dtype.type
        if self.momentum == 0:
            param -= dt(lr) * grad
            return
        m = slots["momentum"]
        momentum = _via_float32(self.momentum, dt)
        m *= momentum
        m -= dt(lr) * grad
        if self.nesterov:
            param += momentum * m - dt(lr) * grad
        else:
            param += m

    def get_config(self):
        config = super().get_config()
        config.update({"momentum": self.momentum, "nesterov": self.nesterov})
        return config


class RMSprop(Optimizer):
    """RMSprop, Keras 3's variant (epsilon inside the square root).

    With velocity ``v`` (zeros at first)::

        v = rho * v + (1 - rho) * g**2
        centered: a = rho * a + (1 - rho) * g;  denominator = v - a**2 + epsilon
        otherwise: denominator = v + epsilon
        increment = lr * g / sqrt(denominator)
        momentum > 0: m = momentum * m + increment;  p -= m
        otherwise:    p -= increment

    Args:
        learning_rate: Positive float. Defaults to 0.001.
        rho: Discount factor in [0, 1). Defaults to 0.9.
        momentum: Float in [0, 1]. Defaults to 0.0.
        epsilon: Positive float. Defaults to 1e-7.
        centered: Whether to normalize by the gradient's estimated variance.
            Defaults to False.
        clipnorm, clipvalue, global_clipnorm, name: See ``Optimizer``.

    Example:

    >>> p = np.zeros(2)
    >>> RMSprop().apply([p], [np.ones(2)])
    >>> bool(np.allclose(p, -0.001 / np.sqrt(0.1 + 1e-7)))
    True
    """

    def __init__(
        self,
        learning_rate=0.001,
        rho=0.9,
        momentum=0.0,
        epsilon=1e-7,
        centered=False,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        name=None,
    ):
        super().__init__(learning_rate, clipnorm, clipvalue, global_clipnorm, name)
        self.rho = _check_range("rho", rho, 0.0, 1.0, high_open=True)
        self.momentum = _check_range("momentum", momentum, 0.0, 1.0)
        self.epsilon = _check_positive("epsilon", epsilon)
        if not isinstance(centered, (bool, np.bool_)):
            raise ValueError(f"Argument `centered` must be a bool. Received: centered={centered!r}.")
        self.centered = bool(centered)

    def _slot_names(self):
        names = ["velocity"]
        if self.momentum > 0:
            names.append("momentum")
        if self.centered:
            names.append("average_gradient")
        return names

    def _update(self, param, grad, slots, lr, step):
        dt = param.dtype.type
        # Keras forms 1 - rho in double precision, then casts: kept for bitwise parity.
        rho, one_minus_rho = dt(self.rho), dt(1.0 - self.rho)
        v = slots["velocity"]
        v[...] = rho * v + one_minus_rho * np.square(grad)
        if self.centered:
            a = slots["average_gradient"]
            a[...] = rho * a + one_minus_rho * grad
            denominator = v - np.square(a) + dt(self.epsilon)
        else:
            denominator = v + dt(self.epsilon)
        increment = dt(lr) * grad / np.sqrt(denominator)
        if self.momentum > 0:
            m = slots["momentum"]
            m[...] = dt(self.momentum) * m + increment
            param -= m
        else:
            param -= increment

    def get_config(self):
        config = super().get_config()
        config.update(
            {"rho": self.rho, "momentum": self.momentum, "epsilon": self.epsilon, "centered": self.centered}
        )
        return config


class Adam(Optimizer):
    """Adam, Keras 3's variant (epsilon outside the square root, "epsilon hat").

    At step ``t = iterations + 1``, with ``m`` and ``v`` zeros at first::

        alpha = lr * sqrt(1 - beta_2**t) / (1 - beta_1**t)
        m += (g - m) * (1 - beta_1)
        v += (g**2 - v) * (1 - beta_2)
        amsgrad: v_hat = max(v_hat, v), used in place of v below
        p -= alpha * m / (sqrt(v) + epsilon)

    Args:
        learning_rate: Positive float. Defaults to 0.001.
        beta_1: Float in [0, 1). Defaults to 0.9.
        beta_2: Float in [0, 1). Defaults to 0.999.
        epsilon: Positive float. Defaults to 1e-7.
        amsgrad: Whether to use the AMSGrad variant. Defaults to False.
        clipnorm, clipvalue, global_clipnorm, name: See ``Optimizer``.

    Example:

    >>> p = np.zeros(1)
    >>> Adam(learning_rate=0.1).apply([p], [np.array([3.0])])
    >>> bool(np.allclose(p, -0.1, atol=1e-6))
    True
    """

    def __init__(
        self,
        learning_rate=0.001,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-7,
        amsgrad=False,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        name=None,
    ):
        super().__init__(learning_rate, clipnorm, clipvalue, global_clipnorm, name)
        self.beta_1 = _check_range("beta_1", beta_1, 0.0, 1.0, high_open=True)
        self.beta_2 = _check_range("beta_2", beta_2, 0.0, 1.0, high_open=True)
        self.epsilon = _check_positive("epsilon", epsilon)
        if not isinstance(amsgrad, (bool, np.bool_)):
            raise ValueError(f"Argument `amsgrad` must be a bool. Received: amsgrad={amsgrad!r}.")
        self.amsgrad = bool(amsgrad)

    def _slot_names(self):
        return ["momentum", "velocity"] + (["velocity_hat"] if self.amsgrad else [])

    def _update(self, param, grad, slots, lr, step):
        dt = param.dtype.type
        beta_1, beta_2 = _via_float32(self.beta_1, dt), _via_float32(self.beta_2, dt)
        # Keras computes the bias correction in the variable's dtype.
        alpha = dt(lr) * np.sqrt(dt(1) - beta_2 ** dt(step)) / (dt(1) - beta_1 ** dt(step))
        m, v = slots["momentum"], slots["velocity"]
        # 1 - beta is formed in double precision, then cast, as Keras does.
        m += (grad - m) * dt(1.0 - self.beta_1)
        v += (np.square(grad) - v) * dt(1.0 - self.beta_2)
        if self.amsgrad:
            v_hat = slots["velocity_hat"]
            np.maximum(v_hat, v, out=v_hat)
            v = v_hat
        param -= (m * alpha) / (np.sqrt(v) + dt(self.epsilon))

    def get_config(self):
        config = super().get_config()
        config.update(
            {"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon, "amsgrad": self.amsgrad}
        )
        return config


class Adagrad(Optimizer):
    """Adagrad, Keras 3's variant.

    With accumulator ``acc`` starting at ``initial_accumulator_value``::

        acc += g**2
        p -= lr * g / sqrt(acc + epsilon)

    Args:
        learning_rate: Positive float. Defaults to 0.001.
        initial_accumulator_value: Non-negative float. Defaults to 0.1.
        epsilon: Positive float. Defaults to 1e-7.
        clipnorm, clipvalue, global_clipnorm, name: See ``Optimizer``.

    Example:

    >>> p = np.zeros(1)
    >>> Adagrad(learning_rate=0.1).apply([p], [np.array([1.0])])
    >>> bool(np.allclose(p, -0.1 / np.sqrt(1.1 + 1e-7)))
    True
    """

    def __init__(
        self,
        learning_rate=0.001,
        initial_accumulator_value=0.1,
        epsilon=1e-7,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        name=None,
    ):
        super().__init__(learning_rate, clipnorm, clipvalue, global_clipnorm, name)
        if not _is_number(initial_accumulator_value) or not (
            np.isfinite(initial_accumulator_value) and initial_accumulator_value >= 0
        ):
            raise ValueError(
                "Argument `initial_accumulator_value` must be a non-negative float. Received: "
                f"initial_accumulator_value={initial_accumulator_value!r}."
            )
        self.initial_accumulator_value = float(initial_accumulator_value)
        self.epsilon = _check_positive("epsilon", epsilon)

    def _slot_names(self):
        return ["accumulator"]

    def _slot_initial_value(self, slot_name):
        # Keras's Constant initializer casts the value through float32.
        return float(np.float32(self.initial_accumulator_value))

    def _update(self, param, grad, slots, lr, step):
        dt = param.dtype.type
        acc = slots["accumulator"]
        acc += np.square(grad)
        param -= dt(lr) * grad / np.sqrt(acc + dt(self.epsilon))

    def get_config(self):
        config = super().get_config()
        config.update(
            {"initial_accumulator_value": self.initial_accumulator_value, "epsilon": self.epsilon}
        )
        return config


_CLASSES = {"SGD": SGD, "RMSprop": RMSprop, "Adam": Adam, "Adagrad": Adagrad}
_ALIASES = {"sgd": SGD, "rmsprop": RMSprop, "adam": Adam, "adagrad": Adagrad}


def serialize(optimizer):
    """Returns ``{"class_name": ..., "config": {...}}`` (no state) for an optimizer."""
    if not isinstance(optimizer, Optimizer):
        raise ValueError(f"Expected a crnn Optimizer. Received: {optimizer!r}.")
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}


def deserialize(config):
    """Creates an optimizer from ``serialize``'s output.

    Args:
        config: Dict with ``"class_name"`` (e.g. ``"Adam"`` or ``"adam"``) and
            ``"config"`` (constructor arguments).

    Returns:
        A new ``Optimizer`` without state.
    """
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"Expected a dict with keys 'class_name' and 'config'. Received: {config!r}.")
    name = config["class_name"]
    cls = _CLASSES.get(name) or _ALIASES.get(str(name).lower())
    if cls is None:
        raise ValueError(f"Unknown optimizer class_name={name!r}. Known: {sorted(_CLASSES)}.")
    return cls.from_config(dict(config.get("config") or {}))


def get(identifier):
    """Returns an optimizer from a name, a config dict or an instance.

    Args:
        identifier: ``"sgd"``, ``"rmsprop"``, ``"adam"`` or ``"adagrad"`` (any
            case; Keras defaults), a ``{"class_name", "config"}`` dict, or an
            ``Optimizer`` instance (returned unchanged).

    Returns:
        An ``Optimizer``.

    Raises:
        ValueError: If the identifier is not recognized.

    Example:

    >>> get("adam").epsilon
    1e-07
    """
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str):
        cls = _ALIASES.get(identifier.lower())
        if cls is None:
            raise ValueError(f"Unknown optimizer: {identifier!r}. Known names: {sorted(_ALIASES)}.")
        return cls()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    raise ValueError(
        f"Could not interpret optimizer identifier: {identifier!r}. Pass a name such as 'adam', "
        "a config dict, or an Optimizer instance."
    )
