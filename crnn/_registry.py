"""The serialized forms and look-ups behind the ``get``, ``serialize`` and ``deserialize``
functions of crnn's families of objects (constraints, regularizers, initializers, losses,
metrics, optimizers, layers)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


def class_config(obj: Any) -> dict[str, Any]:
    """``{"class_name", "config"}``: crnn's serialized form of an object with ``get_config``."""
    return {"class_name": type(obj).__name__, "config": obj.get_config()}


def config_repr(obj: Any, skip: str | None = None) -> str:
    """``ClassName(key=value, ...)`` from ``obj.get_config()``, leaving out the key ``skip``."""
    args = ", ".join(f"{k}={v!r}" for k, v in obj.get_config().items() if k != skip)
    return f"{type(obj).__name__}({args})"


def keras_config(obj: Any, module: str) -> dict[str, Any]:
    """Keras 3's serialized form, ``{"module", "class_name", "config", "registered_name"}``."""
    return {"module": module, "class_name": type(obj).__name__, "config": obj.get_config(),
            "registered_name": None}


def from_class_config(config: Any, what: str, classes: Mapping[str, type],
                      find: Callable[[Any], type | None] | None = None) -> Any:
    """The object that ``config``, a ``{"class_name", "config"}`` dict, describes.

    Args:
        config: The dict; ``"config"`` is optional (no arguments).
        what: The family's name in messages (``"loss"``).
        classes: The family's classes by class name, the names listed in errors.
        find: Looks up a class name; defaults to ``classes.get``.

    Returns:
        ``cls.from_config(config["config"])``, for the class found.

    Raises:
        ValueError: If ``config`` is not a dict with a ``"class_name"``, or the name is
            unknown.
    """
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(
            f"Expected a dict with keys 'class_name' and 'config'. Received: {config!r}.")
    name = config["class_name"]
    cls = (find or classes.get)(name)
    if cls is None:
        raise ValueError(f"Unknown {what} class_name={name!r}. Known: {sorted(classes)}.")
    return cls.from_config(dict(config.get("config") or {}))


class KerasFamily:
    """``get``, ``serialize`` and ``deserialize`` for a family that Keras serializes in its
    ``{"module", "class_name", "config", "registered_name"}`` form and that ``get`` can
    leave unset (``None``): constraints and regularizers.

    Args:
        what: The family's name in messages (``"constraint"``).
        module: The Keras module written in serialized forms (``"keras.constraints"``).
        base: The family's base class; its instances are taken as they are.
        classes: The classes by class name, for ``deserialize``.
        names: The names that ``get`` takes, each mapped to a callable without arguments
            that makes the object (a class, or a factory); listed in its errors.
        find: Looks up a name for ``get``; defaults to ``names.get`` of the lower-cased name.
    """

    def __init__(self, what: str, module: str, base: type, classes: Mapping[str, type],
                 names: Mapping[str, Callable[[], Any]],
                 find: Callable[[str], Callable[[], Any] | None] | None = None) -> None:
        self.what = what
        self.module = module
        self.base = base
        self.classes = classes
        self.names = names
        self.find = find or (lambda name: names.get(name.lower()))

    def serialize(self, obj: Any) -> dict[str, Any] | None:
        """``obj``'s Keras serialized form, or None for None."""
        if obj is None:
            return None
        return keras_config(obj, self.module)

    def deserialize(self, config: Any) -> Any:
        """The object that ``serialize``'s output ``config`` describes."""
        name = config.get("class_name") if isinstance(config, dict) else None
        cls = self.classes.get(name)
        if cls is None:
            raise ValueError(f"Unknown {self.what} {name!r}; known: {sorted(self.classes)}.")
        return cls.from_config(dict(config.get("config") or {}))

    def get(self, identifier: Any) -> Any:
        """The object for None or an instance (as they are), a name, or a serialized form."""
        if identifier is None or isinstance(identifier, self.base):
            return identifier
        if isinstance(identifier, str):
            make = self.find(identifier)
            if make is None:
                raise ValueError(
                    f"Unknown {self.what} {identifier!r}; known names: {sorted(self.names)}.")
            return make()
        if isinstance(identifier, dict):
            return self.deserialize(identifier)
        raise ValueError(f"Could not interpret {self.what} identifier: {identifier!r}.")
