"""Read Keras files into crnn models, without Keras or TensorFlow.

Two formats, for ``Sequential`` models made of the layers crnn has (``LSTM``, ``GRU`` in
both ``reset_after`` modes, ``SimpleRNN``, ``Dense``, ``Dropout``, ``Activation``,
``Embedding``, ``Masking``, ``TimeDistributed``, ``Bidirectional``, ``Input``/``InputLayer``):

* Keras 3 ``.keras`` archives: a zip holding ``config.json`` (the model and compile config),
  ``metadata.json`` and ``model.weights.h5`` (weights under ``layers/<key>/.../vars/<k>``,
  optimizer variables under ``optimizer/vars/<k>``);
* legacy HDF5 ``.h5`` files written by Keras 2, ``tf.keras`` 2.x or Keras 3's
  ``model.save("....h5")``: attributes ``model_config`` and ``training_config`` (JSON), the
  weights in ``model_weights/<layer>/<weight name>`` listed by ``weight_names`` attributes.

``crnn.load_model`` calls :func:`load_model` here for such files. HDF5 is read with h5py, an
optional dependency (``pip install "crnn[keras]"``), imported only when a Keras file is read.

Safety: a Keras file is data, never code. Nothing is unpickled (h5py has no pickle path; the
JSON is parsed with ``json``); every layer and option is checked before any weight is read;
every weight's declared shape and dtype is checked against the shapes the model config
implies before it is read, and against the bytes the file really stores, so a small file
can't make crnn allocate gigabytes; zip members and JSON texts have size limits; HDF5 soft
and external links, external and virtual datasets are refused. Any such problem is a
``ValueError`` that names the file and what is wrong.

Example (with a Keras file at hand, so not a doctest)::

    model = crnn.load_model("forecaster.keras")     # or "forecaster.h5"
    model.save("forecaster.crnn")                   # now loads with numpy + scipy only
"""

from __future__ import annotations

import inspect
import json
import os
import tempfile
import warnings
import zipfile
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from crnn.models import Sequential

__all__ = ["is_keras_file", "load_model"]

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
# HDF5 files may start with a user block of 512, 1024, 2048... bytes.
_HDF5_OFFSETS = (0, 512, 1024, 2048, 4096)
_MAX_JSON_BYTES = 32 << 20
_MAX_MEMBER_BYTES = 8 << 30
# A weight may be stored compressed, but never this much smaller than its data (float
# weights compress a few times at most): beyond it the file is a decompression bomb.
_MAX_RATIO = 1000
_SMALL = 1 << 20
_MAX_STATE_ELEMENTS = 1 << 28
_MAX_ATTRIBUTE_ITEMS = 1 << 20

_RECURRENT = ("LSTM", "GRU", "SimpleRNN")
_LAYERS = _RECURRENT + ("Dense", "Dropout", "Activation", "Embedding", "Masking",
                        "TimeDistributed", "Bidirectional")

# Keras optimizer options with no crnn equivalent, and the values that mean "off".
_OPTIMIZER_OFF = {
    "weight_decay": (None, 0, 0.0), "use_ema": (False, None),
    "ema_overwrite_frequency": (None,), "loss_scale_factor": (None,),
    "gradient_accumulation_steps": (None, 1), "decay": (None, 0, 0.0),
    "is_legacy_optimizer": (False, None),
}
_OPTIMIZER_IGNORED = ("ema_momentum", "jit_compile")


def _import_h5py():
    try:
        import h5py
    except ImportError as error:
        raise ImportError(
            'reading Keras .keras/.h5 files needs h5py, an optional dependency of crnn: '
            'pip install "crnn[keras]" (or pip install h5py). To deploy without h5py, '
            'convert the file once where h5py is installed: crnn convert IN.keras OUT.crnn'
        ) from error
    return h5py


# ---------------------------------------------------------------------- detection


def _kind(path):
    """``"keras"`` (a Keras 3 zip), ``"hdf5"``, or None."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if head[:2] == b"PK":
                try:
                    with zipfile.ZipFile(f) as archive:
                        names = set(archive.namelist())
                except Exception:  # noqa: BLE001 - a zip that zipfile can't read (BadZipFile,
                    # NotImplementedError for a damaged version field, ...) is no Keras file
                    return None
                return "keras" if {"config.json", "model.weights.h5"} <= names else None
            for offset in _HDF5_OFFSETS:
                f.seek(offset)
                if f.read(8) == _HDF5_SIGNATURE:
                    return "hdf5"
    except OSError:
        return None
    return None


def is_keras_file(filepath: str | os.PathLike) -> bool:
    """Whether ``filepath`` is a Keras 3 ``.keras`` archive or an HDF5 file.

    Only the first bytes (and, for a zip, the member names) are looked at; h5py is not
    needed. The file name's extension plays no part.

    Args:
        filepath: a path.

    Returns:
        True for a zip with ``config.json`` and ``model.weights.h5``, or an HDF5 file;
        False for anything else, including a file that is missing or can't be read.

    Example:
        >>> import os, tempfile, zipfile
        >>> import crnn
        >>> folder = tempfile.mkdtemp()
        >>> path = os.path.join(folder, "model.keras")
        >>> with zipfile.ZipFile(path, "w") as archive:      # the members a .keras file has
        ...     archive.writestr("config.json", "{}")
        ...     archive.writestr("model.weights.h5", b"")
        >>> crnn.interop.keras.is_keras_file(path)
        True
        >>> model = crnn.Sequential([crnn.layers.Dense(1, input_shape=(2,))])
        >>> model.save(os.path.join(folder, "model.crnn"))    # crnn's own format
        >>> crnn.interop.keras.is_keras_file(os.path.join(folder, "model.crnn"))
        False
    """
    return _kind(os.fspath(filepath)) is not None


# ---------------------------------------------------------------------- reading


def _json(path, what, text):
    if len(text) > _MAX_JSON_BYTES:
        raise ValueError(f"{path!r}: {what} is {len(text)} bytes, more than the "
                         f"{_MAX_JSON_BYTES} bytes crnn reads; the file is not a model file")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ValueError(f"{path!r}: {what} is not UTF-8 text ({error})") from None
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as error:
        raise ValueError(f"{path!r}: {what} is not valid JSON ({error})") from None


class _Keras3Archive:
    """The members of a ``.keras`` zip, with size limits and every failure a ValueError."""

    def __init__(self, path):
        self.path = path
        try:
            self.zip = zipfile.ZipFile(path)
            self.infos = {info.filename: info for info in self.zip.infolist()}
        except Exception as error:  # noqa: BLE001 - BadZipFile, OSError, EOFError, and the
            # NotImplementedError of a damaged version field, ...: none is a readable archive
            raise ValueError(f"{path!r} is not a readable .keras archive "
                             f"({type(error).__name__}: {error})") from None

    def _info(self, name, limit):
        info = self.infos.get(name)
        if info is None:
            raise ValueError(f"{self.path!r} is not a Keras 3 model archive: it has no "
                             f"{name!r} member")
        if info.file_size > limit:
            raise ValueError(f"{self.path!r}: member {name!r} declares {info.file_size} "
                             f"bytes, more than crnn reads ({limit})")
        if info.compress_type != zipfile.ZIP_STORED and \
                info.file_size > max(_MAX_RATIO * info.compress_size, _SMALL):
            raise ValueError(f"{self.path!r}: member {name!r} expands {info.file_size} / "
                             f"{info.compress_size} times; refusing a decompression bomb")
        return info

    def _copy(self, name, limit, out):
        info = self._info(name, limit)
        total = 0
        try:
            with self.zip.open(info) as member:
                while True:
                    chunk = member.read(1 << 20)
                    if not chunk:
                        break
                    total += len(chunk)
                    if total > info.file_size:
                        raise ValueError(f"{self.path!r}: member {name!r} holds more bytes "
                                         f"than it declares ({info.file_size})")
                    out(chunk)
        except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as error:
            raise ValueError(f"{self.path!r}: member {name!r} is damaged ({error})") from None
        except Exception as error:   # zlib.error, NotImplementedError (unknown compression)
            if isinstance(error, ValueError):
                raise
            raise ValueError(f"{self.path!r}: member {name!r} can't be read ({error})") \
                from None

    def read_json(self, name):
        parts = []
        self._copy(name, _MAX_JSON_BYTES, parts.append)
        return _json(self.path, name, b"".join(parts))

    def extract_weights(self):
        """Copy ``model.weights.h5`` to a temporary file; return its path."""
        fd, tmp = tempfile.mkstemp(prefix="crnn-keras-", suffix=".weights.h5")
        try:
            with os.fdopen(fd, "wb") as f:
                self._copy("model.weights.h5", _MAX_MEMBER_BYTES, f.write)
        except BaseException:
            os.remove(tmp)
            raise
        return tmp

    def close(self):
        self.zip.close()


class _H5:
    """Safe access to an open h5py file: hard links only, checked datasets and attributes."""

    def __init__(self, h5py, path, f, file_size):
        self.h5py = h5py
        self.path = path
        self.f = f
        self.file_size = file_size

    def child(self, group, name, what):
        """``group[name]`` through hard links only; None if absent."""
        node = group
        for part in [p for p in name.split("/") if p]:
            if not isinstance(node, self.h5py.Group):
                return None
            try:
                link = node.get(part, getlink=True)
            except (KeyError, ValueError, OSError, RuntimeError):
                return None
            if link is None:
                return None
            if not isinstance(link, self.h5py.HardLink):
                raise ValueError(f"{self.path!r}: {what} is a {type(link).__name__}; crnn "
                                 f"reads only plain HDF5 groups and datasets")
            try:
                node = node[part]
            except (KeyError, ValueError, OSError, RuntimeError) as error:
                raise ValueError(f"{self.path!r}: {what} can't be opened ({error})") from None
        return node

    def attribute(self, node, name, what):
        """A string, list of strings, or small array attribute; None if absent."""
        try:
            if name not in node.attrs:
                return None
            attr_id = node.attrs.get_id(name)
            size = int(np.prod(attr_id.shape)) if attr_id.shape else 1
            if size > _MAX_ATTRIBUTE_ITEMS:
                raise ValueError(f"{self.path!r}: {what} holds {size} items, more than "
                                 f"crnn reads")
            value = node.attrs[name]
        except ValueError:
            raise
        except (KeyError, OSError, RuntimeError, TypeError) as error:
            raise ValueError(f"{self.path!r}: {what} can't be read ({error})") from None
        return _decode(value)

    def check_dataset(self, node, shape, what):
        """Check a dataset's metadata (nothing read): float dtype, ``shape``, stored bytes."""
        h5py = self.h5py
        if not isinstance(node, h5py.Dataset):
            raise ValueError(f"{self.path!r}: {what} is missing (no dataset there)")
        try:
            dtype, found = node.dtype, tuple(node.shape)
            external = node.external
            virtual = node.is_virtual
            stored = node.id.get_storage_size()
            filtered = bool(node.compression) or bool(node.chunks)
        except (OSError, RuntimeError, ValueError, TypeError) as error:
            raise ValueError(f"{self.path!r}: {what} has damaged metadata ({error})") from None
        if dtype.kind != "f" or dtype.itemsize not in (2, 4, 8):
            raise ValueError(f"{self.path!r}: {what} has dtype {dtype}, expected float")
        if found != tuple(shape):
            raise ValueError(f"{self.path!r}: {what} has shape {found}, the model config "
                             f"implies {tuple(shape)}")
        if external or virtual:
            raise ValueError(f"{self.path!r}: {what} points to data outside the file "
                             f"(external or virtual dataset); crnn refuses it")
        nbytes = int(np.prod(found, dtype=np.int64)) * dtype.itemsize if found else \
            dtype.itemsize
        limit = max(_MAX_RATIO * stored, _SMALL) if filtered else max(stored, _SMALL)
        if nbytes > limit or stored > self.file_size:
            raise ValueError(f"{self.path!r}: {what} declares {nbytes} bytes of data but the "
                             f"file stores {stored}; the file is truncated or damaged")

    def read(self, node, what):
        try:
            return np.array(node[()])
        except (OSError, RuntimeError, ValueError, TypeError) as error:
            raise ValueError(f"{self.path!r}: {what} can't be read; the file is truncated or "
                             f"damaged ({error})") from None


def _decode(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "SOU":
            return [_decode(v) for v in value.reshape(-1).tolist()]
        return value
    return value


# ---------------------------------------------------------------------- configs


def _entry(path, entry, where):
    """A layer entry reduced to ``{"class_name", "config"}``, inner layers too."""
    if not isinstance(entry, dict) or not isinstance(entry.get("class_name"), str) \
            or not isinstance(entry.get("config"), dict):
        raise ValueError(f"{path!r}: {where} is not a layer config (expected a dict with "
                         f"'class_name' and 'config')")
    class_name, config = entry["class_name"], dict(entry["config"])
    name = config.get("name", "?")
    if class_name not in _LAYERS and class_name != "InputLayer":
        raise ValueError(
            f"{path!r}: layer {name!r} is a Keras {class_name}, which crnn does not have; "
            f"crnn loads Sequential models of {', '.join(('InputLayer',) + _LAYERS)}"
        )
    dtype = config.get("dtype")
    if isinstance(dtype, dict):
        dtype = (dtype.get("config") or {}).get("name")
    if class_name != "InputLayer" and dtype not in (None, "float32", "float64"):
        raise ValueError(f"{path!r}: layer {name!r} ({class_name}) has dtype={dtype!r}; crnn "
                         f"computes in float32 or float64 (no mixed precision)")
    # tf.keras 2 wrote time_major into every RNN config; False is crnn's layout.
    if class_name in _RECURRENT and config.pop("time_major", False):
        raise ValueError(f"{path!r}: layer {name!r} ({class_name}) has time_major=True; "
                         f"crnn takes (batch, timesteps, features) inputs only")
    for key in ("layer", "backward_layer"):
        if config.get(key) is not None and class_name in ("TimeDistributed", "Bidirectional"):
            inner = _entry(path, config[key], f"the {key} of layer {name!r}")
            if inner["class_name"] in ("TimeDistributed", "Bidirectional"):
                raise ValueError(f"{path!r}: layer {name!r} ({class_name}) wraps a "
                                 f"{inner['class_name']}; crnn loads one level of wrapping")
            if class_name == "Bidirectional" and inner["class_name"] not in _RECURRENT:
                raise ValueError(f"{path!r}: layer {name!r} (Bidirectional) wraps a "
                                 f"{inner['class_name']}; crnn wraps LSTM, GRU or SimpleRNN")
            if inner["class_name"] == "InputLayer":
                raise ValueError(f"{path!r}: layer {name!r} wraps an InputLayer")
            config[key] = inner
    return {"class_name": class_name, "config": config}


def _layers_from_config(path, model_config):
    """The crnn layers (not built) of a Keras Sequential config, every option checked."""
    from crnn.layers import deserialize

    if not isinstance(model_config, dict):
        raise ValueError(f"{path!r}: the model config is not a JSON object")
    class_name = model_config.get("class_name")
    if class_name != "Sequential":
        kind = "a functional Keras model" if class_name in ("Functional", "Model") else \
            f"a Keras {class_name!r} model"
        raise ValueError(
            f"{path!r} holds {kind}; crnn loads Sequential models only. If the model is a "
            f"plain stack of layers, rebuild it as keras.Sequential([...]), copy the weights "
            f"with set_weights(get_weights()) and save that"
        )
    config = model_config.get("config")
    layers = config if isinstance(config, list) else (config or {}).get("layers")
    if not isinstance(layers, list) or not layers:
        raise ValueError(f"{path!r}: the Sequential config has no 'layers' list")
    result = []
    for k, raw in enumerate(layers):
        entry = _entry(path, raw, f"layer {k} of the model config")
        if entry["class_name"] == "InputLayer" and k:
            raise ValueError(f"{path!r}: an InputLayer can only come first, found at {k}")
        name = entry["config"].get("name", "?")
        try:
            result.append(deserialize(entry))
        except (TypeError, ValueError, NotImplementedError, KeyError) as error:
            raise ValueError(f"{path!r}: layer {name!r} ({entry['class_name']}) can't be "
                             f"loaded by crnn: {error}") from None
    build = (model_config.get("build_config") or {}).get("input_shape") \
        if isinstance(model_config.get("build_config"), dict) else None
    name = config.get("name") if isinstance(config, dict) else None
    trainable = config.get("trainable", True) if isinstance(config, dict) else True
    return result, build, {"name": name if isinstance(name, str) and name else None,
                           "trainable": bool(trainable)}


def _expected_shapes(layer, input_shape):
    """The weight shapes ``layer`` will create for ``input_shape``, without creating them."""
    from crnn.layers import Bidirectional, Dense, Embedding, TimeDistributed
    from crnn.layers.recurrent import _RNN

    if isinstance(layer, _RNN):
        width = layer._gates * layer.units
        shapes = [(input_shape[-1], width), (layer.units, width)]
        return shapes + ([layer._bias_shape()] if layer.use_bias else [])
    if isinstance(layer, Bidirectional):
        return (_expected_shapes(layer.forward_layer, input_shape)
                + _expected_shapes(layer.backward_layer, input_shape))
    if isinstance(layer, TimeDistributed):
        return _expected_shapes(layer.layer, (None,) + tuple(input_shape[2:]))
    if isinstance(layer, Dense):
        return [(input_shape[-1], layer.units)] + ([(layer.units,)] if layer.use_bias else [])
    if isinstance(layer, Embedding):
        return [(layer.input_dim, layer.output_dim)]
    return []


def _input_shape(path, layers, build):
    from crnn.layers import InputLayer

    if layers and isinstance(layers[0], InputLayer):
        return layers[0].batch_shape
    for layer in layers[:1]:
        if layer._batch_input_shape is not None:
            return layer._batch_input_shape
    if build is not None:
        return tuple(None if v is None else int(v) for v in build)
    raise ValueError(f"{path!r}: the model config declares no input shape, so its weights "
                     f"can't be matched; Keras saves one for any built model")


def _plan(path, layers, build):
    """``[(layer, expected weight shapes)]`` for the weighted layers, and the input shape."""
    from crnn.layers import InputLayer

    shape = _input_shape(path, layers, build)
    plan = []
    current = tuple(shape)
    for layer in layers:
        if isinstance(layer, InputLayer):
            continue
        shapes = _expected_shapes(layer, current)
        if any(v is None for s in shapes for v in s):
            raise ValueError(f"{path!r}: layer {layer.name!r} gets input of shape "
                             f"{current}, whose feature size is unknown")
        plan.append((layer, shapes))
        if getattr(layer, "stateful", False) and isinstance(current[0], int):
            units = getattr(layer, "units", None) or layer.forward_layer.units
            # At most 2 states (LSTM h, c) x 2 directions of (batch, units) each.
            if current[0] * units * 4 > _MAX_STATE_ELEMENTS:
                raise ValueError(f"{path!r}: stateful layer {layer.name!r} would keep states "
                                 f"of {current[0]} x {units}; crnn refuses that size")
        current = tuple(layer.compute_output_shape(current))
    return plan, shape


# ---------------------------------------------------------------------- weights


def _keras3_leaf_paths(layer, n):
    """Paths of a layer's ``n`` weights inside its ``layers/<key>`` group."""
    from crnn.layers import Bidirectional, TimeDistributed
    from crnn.layers.recurrent import _RNN

    if isinstance(layer, Bidirectional):        # both directions have the same weights
        return (["forward_layer/" + p for p in _keras3_leaf_paths(layer.forward_layer, n // 2)]
                + ["backward_layer/" + p for p in _keras3_leaf_paths(layer.backward_layer,
                                                                      n // 2)])
    if isinstance(layer, TimeDistributed):
        return ["layer/" + p for p in _keras3_leaf_paths(layer.layer, n)]
    prefix = "cell/" if isinstance(layer, _RNN) else ""
    return [f"{prefix}vars/{k}" for k in range(n)]


def _keras3_keys(layers):
    """The group names Keras 3 gives a Sequential model's layers in model.weights.h5: the
    snake_case class name, numbered from the second of a class on (dense, dense_1...)."""
    from crnn.layers.base import _snake_case

    used, keys = {}, []
    for layer in layers:
        key = _snake_case(type(layer).__name__)
        if key in used:
            used[key] += 1
            key = f"{key}_{used[key]}"
        else:
            used[key] = 0
        keys.append(key)
    return keys


def _keras3_datasets(h5, root, plan):
    layers = h5.child(root, "layers", "the 'layers' group")
    if layers is None:
        raise ValueError(f"{h5.path!r}: model.weights.h5 has no 'layers' group")
    found = []
    for (layer, shapes), key in zip(plan, _keras3_keys([layer for layer, _ in plan])):
        if not shapes:
            continue
        group = h5.child(layers, key, f"layers/{key}")
        if group is None:
            raise ValueError(f"{h5.path!r}: the weights of layer {layer.name!r} (group "
                             f"layers/{key}) are missing")
        for k, (rel, shape) in enumerate(zip(_keras3_leaf_paths(layer, len(shapes)), shapes)):
            what = f"weight {k} of layer {layer.name!r} (layers/{key}/{rel})"
            node = h5.child(group, rel, what)
            h5.check_dataset(node, shape, what)
            found.append((node, what))
    return found


def _legacy_names(h5, group, attr, what):
    """A list attribute, possibly chunked by Keras into ``attr0``, ``attr1``..."""
    value = h5.attribute(group, attr, what)
    if value is None:
        value, k = [], 0
        while True:
            chunk = h5.attribute(group, f"{attr}{k}", what)
            if chunk is None:
                break
            value.extend(chunk if isinstance(chunk, list) else [chunk])
            k += 1
            if len(value) > _MAX_ATTRIBUTE_ITEMS:
                raise ValueError(f"{h5.path!r}: {what} is too long")
    if isinstance(value, str):
        value = [value]
    if isinstance(value, np.ndarray):       # an empty list is stored as a float array
        if value.size:
            raise ValueError(f"{h5.path!r}: {what} is not a list of names")
        value = []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{h5.path!r}: {what} is not a list of names")
    return value


def _legacy_datasets(h5, root, plan):
    names = set(_legacy_names(h5, root, "layer_names", "the model_weights layer_names"))
    found = []
    for layer, shapes in plan:
        if not shapes:
            continue
        if layer.name not in names:
            raise ValueError(f"{h5.path!r}: the weights of layer {layer.name!r} are missing "
                             f"(it is not in model_weights' layer_names)")
        group = h5.child(root, layer.name, f"the weights group of layer {layer.name!r}")
        if group is None:
            raise ValueError(f"{h5.path!r}: the weights group of layer {layer.name!r} is "
                             f"missing")
        wnames = _legacy_names(h5, group, "weight_names",
                               f"the weight_names of layer {layer.name!r}")
        if len(wnames) != len(shapes):
            raise ValueError(f"{h5.path!r}: layer {layer.name!r} has {len(wnames)} weights "
                             f"in the file, the model config implies {len(shapes)} of shapes "
                             f"{shapes}")
        for k, (wname, shape) in enumerate(zip(wnames, shapes)):
            what = f"weight {k} of layer {layer.name!r} ({wname})"
            node = h5.child(group, wname, what)
            h5.check_dataset(node, shape, what)
            found.append((node, what))
    return found


# ---------------------------------------------------------------------- compile


def _warn(path, message):
    warnings.warn(f"{path!r}: {message}; the model is loaded for inference (call "
                  f"model.compile(...) to train it)", UserWarning, stacklevel=4)


def _optimizer(path, config):
    from crnn import optimizers

    if isinstance(config, str):
        return optimizers.get(config)
    if not isinstance(config, dict) or not isinstance(config.get("class_name"), str):
        raise _Unsupported("the optimizer config is not a {'class_name', 'config'} dict")
    name = config["class_name"]
    cls = optimizers._CLASSES.get(name) or optimizers._ALIASES.get(name.lower())
    if cls is None:
        raise _Unsupported(f"crnn has no optimizer {name!r} (it has "
                           f"{sorted(optimizers._CLASSES)})")
    options = dict(config.get("config") or {})
    allowed = set(inspect.signature(cls.__init__).parameters) - {"self"}
    kept = {}
    for key, value in options.items():
        if key in allowed:          # weight_decay, a schedule as learning_rate: crnn has them
            kept[key] = value
        elif key in _OPTIMIZER_OFF:
            if value not in _OPTIMIZER_OFF[key]:
                raise _Unsupported(f"the optimizer option {key}={value!r} has no crnn "
                                   f"equivalent")
        elif key in _OPTIMIZER_IGNORED:
            continue
        else:
            raise _Unsupported(f"crnn's {cls.__name__} has no option {key!r} "
                               f"(= {value!r})")
    return cls(**kept)


def _loss(config):
    from crnn import losses

    if isinstance(config, dict):
        inner = dict(config.get("config") or {})
        if inner.get("reduction") in ("sum_over_batch_size", "auto", None):
            inner.pop("reduction", None)
        inner.pop("dtype", None)
        # Keras writes these at their defaults (crnn's only behaviour) in every config.
        if inner.get("axis") == -1:
            del inner["axis"]
        if "ignore_class" in inner and inner["ignore_class"] is None:
            del inner["ignore_class"]
        config = {"class_name": config.get("class_name"), "config": inner}
    return losses.get(config)


def _metrics(path, metrics):
    from crnn import metrics as metrics_module

    flat = []

    def walk(item):
        if isinstance(item, (list, tuple)):
            for sub in item:
                walk(sub)
        elif item is not None:
            flat.append(item)

    walk(metrics or [])
    names = []
    for item in flat:
        name = item
        if isinstance(item, dict):
            name = (item.get("config") or {}).get("name") or item.get("class_name")
        try:
            metrics_module.get(name)
            names.append(name)
        except (ValueError, TypeError):
            warnings.warn(f"{path!r}: metric {name!r} is not in crnn; compiled without it",
                          UserWarning, stacklevel=4)
    return names


class _Unsupported(Exception):
    """A compile option crnn lacks: the model loads uncompiled, with a warning."""


def _compile(path, model, optimizer, loss, metrics):
    """Compile ``model`` like the Keras file; warn and return False if crnn can't."""
    if loss is None and optimizer is None:       # Keras saved an uncompiled model
        return False
    if loss is None:
        _warn(path, "the compile config has no loss")
        return False
    try:
        opt = _optimizer(path, optimizer)
        loss_obj = _loss(loss)
    except (_Unsupported, ValueError, TypeError) as error:
        _warn(path, f"its compile config can't be restored ({error})")
        return False
    model.compile(optimizer=opt, loss=loss_obj, metrics=_metrics(path, metrics))
    return True


def _keras_slot_order(opt, n_params):
    """``[(slot name, parameter index)]`` in the order Keras 3 stores optimizer variables
    after ``iterations`` and ``learning_rate``: each ``add_optimizer_variables`` call in the
    optimizer's ``build`` adds its slot names parameter by parameter (Adam and AdamW: m0, v0,
    m1, v1, ..., then the AMSGrad maxima; Adamax: m0, u0, m1, u1...; Nadam: m0, v0...;
    RMSprop: all velocities, then momentums, then averages)."""
    from crnn import optimizers

    if isinstance(opt, optimizers.Adam):
        calls = [["momentum", "velocity"]] + ([["velocity_hat"]] if opt.amsgrad else [])
    elif isinstance(opt, (optimizers.Adamax, optimizers.Nadam)):
        calls = [opt._slot_names()]
    else:           # SGD, RMSprop, Adagrad: one slot per call, in crnn's slot order
        calls = [[slot] for slot in opt._slot_names()]
    return [(slot, k) for call in calls for k in range(n_params) for slot in call]


def _restore_optimizer(path, h5, model, nodes):
    """Keras 3 optimizer variables (``iterations``, ``learning_rate`` unless it is a
    schedule, then the slots in ``_keras_slot_order``, then Nadam's momentum-schedule
    product) into crnn's order (iterations, then slot by slot, then that product)."""
    from crnn import optimizers

    opt = model.optimizer
    params = model.trainable_weights
    order = _keras_slot_order(opt, len(params))
    # Keras keeps no learning_rate variable for a schedule (it is computed from iterations).
    fixed = 1 if opt.learning_rate_schedule is not None else 2
    extra = 1 if isinstance(opt, optimizers.Nadam) else 0
    if len(nodes) == fixed and order:
        # Keras creates the slots on the first training step: none was taken.
        return
    if len(nodes) != fixed + len(order) + extra:
        _warn_state(path, f"{len(nodes)} optimizer variables, crnn's "
                          f"{type(opt).__name__} expects {fixed + len(order) + extra}")
        return
    where = {entry: nodes[fixed + i] for i, entry in enumerate(order)}
    try:
        iterations = nodes[0]
        if not isinstance(iterations, h5.h5py.Dataset) or iterations.shape != () \
                or iterations.dtype.kind not in "iu":
            raise ValueError(f"{path!r}: the optimizer's iteration count is damaged")
        for (slot, k), node in where.items():
            h5.check_dataset(node, params[k].shape, f"optimizer slot {slot!r} of parameter {k}")
        if extra:
            h5.check_dataset(nodes[-1], (), "Nadam's momentum-schedule product")
    except ValueError as error:
        _warn_state(path, str(error))
        return
    count = int(h5.read(iterations, "the optimizer's iteration count"))
    arrays = [h5.read(where[(slot, k)], f"optimizer slot {slot!r} of parameter {k}")
              for slot in opt._slot_names() for k in range(len(params))]
    if extra:
        arrays.append(h5.read(nodes[-1], "Nadam's momentum-schedule product"))
    opt.set_state([np.array(count, np.int64)] + arrays)


def _warn_state(path, why):
    warnings.warn(f"{path!r}: the optimizer state is not restored ({why}); training "
                  f"continues with fresh optimizer slots", UserWarning, stacklevel=4)


# ---------------------------------------------------------------------- loading


def _build(path, layers, shape, options, arrays):
    from crnn.layers import InputLayer
    from crnn.models import Sequential

    model = Sequential(**options)
    if not isinstance(layers[0], InputLayer):
        model.add(InputLayer(batch_shape=shape))
    for layer in layers:
        model.add(layer)
    if not model.built:
        model.build(shape)
    model.set_weights(arrays)
    return model


def _load_keras3(path, compile):
    archive = _Keras3Archive(path)
    try:
        config = archive.read_json("config.json")
        if not isinstance(config, dict):
            raise ValueError(f"{path!r}: config.json is not a JSON object")
        layers, build, options = _layers_from_config(path, config)
        plan, shape = _plan(path, layers, build)
        h5py = _import_h5py()
        tmp = archive.extract_weights()
    finally:
        archive.close()
    try:
        with _OpenH5(h5py, path, tmp) as h5:
            nodes = _keras3_datasets(h5, h5.f, plan)
            arrays = [h5.read(node, what) for node, what in nodes]
            model = _build(path, layers, shape, options, arrays)
            compile_config = config.get("compile_config")
            if compile and isinstance(compile_config, dict) and _compile(
                    path, model, compile_config.get("optimizer"), compile_config.get("loss"),
                    compile_config.get("metrics")):
                variables = h5.child(h5.f, "optimizer/vars", "the optimizer variables")
                if variables is not None:
                    count = _count_numbered(h5, variables)
                    nodes = [h5.child(variables, str(k), f"optimizer variable {k}")
                             for k in range(count)]
                    _restore_optimizer(path, h5, model, nodes)
    finally:
        os.remove(tmp)
    return model


def _count_numbered(h5, group):
    try:
        keys = list(group.keys())
    except (OSError, RuntimeError) as error:
        raise ValueError(f"{h5.path!r}: the optimizer variables are damaged ({error})") \
            from None
    count = 0
    while str(count) in keys:
        count += 1
    return count


class _OpenH5:
    """Open an HDF5 file read-only as an `_H5`; an unreadable file is a ValueError."""

    def __init__(self, h5py, path, filename):
        self.h5py, self.path, self.filename = h5py, path, filename

    def __enter__(self):
        try:
            f = self.h5py.File(self.filename, "r")
        except (OSError, ValueError, RuntimeError) as error:
            raise ValueError(f"{self.path!r} is not a readable HDF5 file; it may be "
                             f"truncated or damaged ({error})") from None
        self.h5 = _H5(self.h5py, self.path, f, os.path.getsize(self.filename))
        return self.h5

    def __exit__(self, *exc):
        try:
            self.h5.f.close()
        except (OSError, RuntimeError, ValueError):
            pass        # closing a damaged file must not hide the first error
        return False


def _load_hdf5(path, compile):
    h5py = _import_h5py()
    with _OpenH5(h5py, path, path) as h5:
        text = h5.attribute(h5.f, "model_config", "the model_config attribute")
        if text is None:
            raise ValueError(
                f"{path!r} is an HDF5 file without a model_config attribute: it holds "
                f"weights only (or is not a Keras file). Build the model in crnn and load "
                f"the weights with crnn.interop.keras, or save the whole model in Keras"
            )
        if not isinstance(text, str):
            raise ValueError(f"{path!r}: the model_config attribute is not JSON text")
        layers, build, options = _layers_from_config(path, _json(path, "model_config", text))
        plan, shape = _plan(path, layers, build)
        root = h5.child(h5.f, "model_weights", "the model_weights group")
        if root is None:
            raise ValueError(f"{path!r} has a model config but no model_weights group")
        nodes = _legacy_datasets(h5, root, plan)
        arrays = [h5.read(node, what) for node, what in nodes]
        model = _build(path, layers, shape, options, arrays)
        training = h5.attribute(h5.f, "training_config", "the training_config attribute")
        if compile and isinstance(training, str):
            training = _json(path, "training_config", training)
            if isinstance(training, dict) and _compile(
                    path, model, training.get("optimizer_config"), training.get("loss"),
                    training.get("metrics")):
                _restore_legacy_optimizer(path, h5, model)
    return model


def _restore_legacy_optimizer(path, h5, model):
    group = h5.child(h5.f, "optimizer_weights", "the optimizer_weights group")
    if group is None:
        return
    version = h5.attribute(h5.f, "keras_version", "keras_version")
    if not (isinstance(version, str) and version.startswith("3.")):
        _warn_state(path, f"crnn restores optimizer state from Keras 3 files only, this "
                          f"file was written by Keras {version}")
        return
    names = _legacy_names(h5, group, "weight_names", "the optimizer weight_names")
    nodes = [h5.child(group, n, f"optimizer variable {n!r}") for n in names]
    _restore_optimizer(path, h5, model, nodes)


def load_model(filepath: str | os.PathLike, compile: bool = True) -> Sequential:
    """Load a Keras ``.keras`` or ``.h5`` Sequential model as a crnn ``Sequential``.

    Args:
        filepath: a Keras 3 ``.keras`` archive or a legacy Keras 2 / ``tf.keras`` /
            Keras 3 ``.h5`` file.
        compile: also restore the compile config (optimizer, loss, metrics) and, for
            Keras 3 files, the optimizer state, where crnn has them (default True). Where
            it does not, the model still loads, uncompiled, with a ``UserWarning``.

    Returns:
        A built ``crnn.Sequential`` with Keras's weights, input shape (batch size
        included), ``stateful`` flags, masking and dtypes. States start at zero: Keras
        does not save RNN states.

    Raises:
        FileNotFoundError: there is no such file.
        ImportError: h5py is not installed (``pip install "crnn[keras]"``).
        ValueError: the file is not a Keras model file, is damaged, truncated or hostile,
            holds a functional model, or uses a layer or option crnn does not have (the
            message names the layer and the option); raised before any weight is read.

    Example:
        With a Keras file at hand and h5py installed:

        >>> import crnn
        >>> model = crnn.interop.keras.load_model("forecaster.keras")  # doctest: +SKIP
        >>> model.save("forecaster.crnn")      # loads with NumPy and SciPy only  # doctest: +SKIP
    """
    path = os.fspath(filepath)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path!r}")
    kind = _kind(path)
    if kind == "keras":
        return _load_keras3(path, compile)
    if kind == "hdf5":
        return _load_hdf5(path, compile)
    raise ValueError(f"{path!r} is neither a Keras 3 .keras archive (a zip with config.json "
                     f"and model.weights.h5) nor an HDF5 .h5 file")
