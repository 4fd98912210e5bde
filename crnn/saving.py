"""Saving and loading models and weights: one file, no pickle, written atomically.

File format: a NumPy ``.npz`` archive (a zip of ``.npy`` arrays, readable with
``np.load(path, allow_pickle=False)``) holding

* ``crnn_header``: UTF-8 JSON as a uint8 array: format name and version, the kind of
  file (``"model"`` or ``"weights"``), the model config, the compile config, and how many
  weight / optimizer / state arrays follow (with their shapes, to check them on load);
* ``weight_00000``...: the model's weights, in ``model.get_weights()`` order;
* ``optimizer_00000``...: the optimizer state (iterations, then slots);
* ``state_00000``...: the current states of stateful layers, layer by layer.

The file is written to a temporary file in the same directory and moved into place with
``os.replace``, so a crash mid-save leaves any earlier file intact.

Example:
    >>> model.save("forecaster.crnn")
    >>> same = crnn.load_model("forecaster.crnn")
"""

import json
import os
import tempfile
import zipfile

import numpy as np

__all__ = ["save_model", "load_model", "save_weights", "load_weights"]

FORMAT = "crnn"
VERSION = 1
_HEADER = "crnn_header"


def _name(prefix, k):
    return f"{prefix}_{k:05d}"


def _write_atomically(filepath, arrays, overwrite):
    filepath = os.fspath(filepath)
    if not overwrite and os.path.exists(filepath):
        raise FileExistsError(f"{filepath!r} exists and overwrite=False; pass overwrite=True "
                              f"or choose another path")
    directory = os.path.dirname(os.path.abspath(filepath))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(filepath) + ".", suffix=".tmp",
                               dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            # Writing through a file object stops NumPy from appending ".npz" to the name.
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, filepath)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _header_array(header):
    return np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)


def _weights_arrays(model):
    return {_name("weight", k): w for k, w in enumerate(model.get_weights())}


def _state_arrays(model):
    counts, arrays = [], []
    for layer in model.layers:
        states = layer._state_arrays()
        if states:
            counts.append([layer.name, len(states)])
            arrays.extend(states)
    return counts, {_name("state", k): s for k, s in enumerate(arrays)}


def save_model(model, filepath, overwrite=True, include_optimizer=True):
    """Save a ``Sequential`` model to one file (see the module notes for the format).

    Args:
        model: the model.
        filepath: destination path (any extension; ``.crnn`` is customary).
        overwrite: replace an existing file (default True).
        include_optimizer: also save the optimizer state, so that training resumes
            exactly (default True).
    """
    if not model.built:
        raise ValueError(f"model {model.name!r} is not built, so it has no weights to save; "
                         f"declare its input shape or call it on data first")
    arrays = _weights_arrays(model)
    optimizer_state = []
    if include_optimizer and model.optimizer is not None:
        optimizer_state = model.optimizer.get_state()
    arrays.update({_name("optimizer", k): np.asarray(a) for k, a in enumerate(optimizer_state)})
    state_counts, state_arrays = _state_arrays(model)
    arrays.update(state_arrays)
    header = {
        "format": FORMAT, "version": VERSION, "kind": "model",
        "config": {"class_name": type(model).__name__, "config": model.get_config()},
        "compile_config": model._compile_config if model.optimizer is not None else None,
        "weight_shapes": [list(w.shape) for w in model.weights],
        "n_optimizer": len(optimizer_state),
        "states": state_counts,
    }
    arrays[_HEADER] = _header_array(header)
    _write_atomically(filepath, arrays, overwrite)


def save_weights(model, filepath, overwrite=True):
    """Save only the weights of ``model`` (restore with ``load_weights``)."""
    if not model.built:
        raise ValueError(f"model {model.name!r} is not built, so it has no weights to save")
    arrays = _weights_arrays(model)
    header = {"format": FORMAT, "version": VERSION, "kind": "weights",
              "weight_shapes": [list(w.shape) for w in model.weights]}
    arrays[_HEADER] = _header_array(header)
    _write_atomically(filepath, arrays, overwrite)


class _Archive:
    """Reads a crnn file, turning every way it can be broken into a ValueError."""

    def __init__(self, filepath):
        self.path = os.fspath(filepath)
        if not os.path.exists(self.path):
            raise FileNotFoundError(f"no such file: {self.path!r}")
        if not zipfile.is_zipfile(self.path):
            raise ValueError(
                f"{self.path!r} is not a crnn model or weights file: it is not a zip/npz "
                f"archive (it may be truncated, or a file from another program)"
            )
        try:
            self.npz = np.load(self.path, allow_pickle=False)
            self.files = set(self.npz.files)
        except Exception as error:
            raise ValueError(f"{self.path!r} is damaged and can't be read: {error}") from error
        if _HEADER not in self.files:
            raise ValueError(
                f"{self.path!r} is not a crnn model or weights file: it has no {_HEADER!r} "
                f"entry (found entries {sorted(self.files)[:5]})"
            )
        try:
            self.header = json.loads(self.array(_HEADER).tobytes().decode("utf-8"))
        except ValueError as error:
            raise ValueError(f"{self.path!r} has a damaged header: {error}") from error
        if not isinstance(self.header, dict) or self.header.get("format") != FORMAT:
            raise ValueError(f"{self.path!r} is not a crnn file (its header has no "
                             f"format={FORMAT!r})")
        if self.header.get("version") != VERSION:
            raise ValueError(
                f"{self.path!r} uses crnn file format version {self.header.get('version')}, "
                f"this crnn reads version {VERSION}"
            )

    def array(self, key):
        if key not in self.files:
            raise ValueError(f"{self.path!r} is damaged: entry {key!r} is missing")
        try:
            return self.npz[key]
        except Exception as error:
            raise ValueError(
                f"{self.path!r} is damaged: entry {key!r} can't be read ({error})"
            ) from error

    def weights(self):
        shapes = self.header.get("weight_shapes")
        if not isinstance(shapes, list):
            raise ValueError(f"{self.path!r} has a damaged header: no weight_shapes list")
        weights = []
        for k, shape in enumerate(shapes):
            w = self.array(_name("weight", k))
            if list(w.shape) != list(shape):
                raise ValueError(f"{self.path!r} is damaged: weight {k} has shape {w.shape}, "
                                 f"the header says {tuple(shape)}")
            weights.append(w)
        return weights

    def close(self):
        self.npz.close()


def _check_model_weights(path, model, weights):
    own = model.weights
    if len(own) != len(weights) or any(a.shape != b.shape for a, b in zip(own, weights)):
        raise ValueError(
            f"the weights in {path!r} don't fit model {model.name!r}: the file holds "
            f"{len(weights)} arrays of shapes {[tuple(w.shape) for w in weights]}, the model "
            f"has {len(own)} of shapes {[tuple(w.shape) for w in own]}"
        )


def load_weights(model, filepath):
    """Load weights from a ``save_weights`` or ``save`` file into ``model`` (shape-checked)."""
    archive = _Archive(filepath)
    try:
        weights = archive.weights()
    finally:
        archive.close()
    if not model.built:
        raise ValueError(f"model {model.name!r} must be built before load_weights; declare its "
                         f"input shape or call it on data first")
    _check_model_weights(archive.path, model, weights)
    model.set_weights(weights)


def load_model(filepath, compile=True):
    """Load a model saved with ``model.save``: config, weights, optimizer and RNN states.

    Args:
        filepath: the file.
        compile: recompile the model with the saved optimizer (and its state), loss and
            metrics (default True).

    Returns:
        A ``Sequential`` model whose predictions are bit-identical to the saved one's and
        whose training continues where it stopped.

    Raises:
        ValueError: if the file is damaged, truncated, or not a crnn model file.

    Keras ``.keras``/``.h5`` files are read by ``crnn.interop.keras.load_model``.
    """
    from crnn.interop import keras as keras_files  # Keras .keras/.h5 files (issue 8)
    from crnn.models import Sequential

    if keras_files.is_keras_file(filepath):
        return keras_files.load_model(filepath, compile=compile)

    archive = _Archive(filepath)
    path = archive.path
    try:
        header = archive.header
        if header.get("kind") != "model":
            raise ValueError(
                f"{path!r} holds only weights (written by save_weights); build the model "
                f"and call model.load_weights({path!r}) instead"
            )
        weights = archive.weights()
        optimizer_state = [archive.array(_name("optimizer", k))
                           for k in range(int(header.get("n_optimizer", 0)))]
        states = []
        total = 0
        for layer_name, count in header.get("states", []):
            arrays = [archive.array(_name("state", total + k)) for k in range(count)]
            total += count
            states.append((layer_name, arrays))
    finally:
        archive.close()
    config = header.get("config")
    if not isinstance(config, dict) or config.get("class_name") != "Sequential":
        raise ValueError(f"{path!r} has a damaged header: no Sequential model config")
    try:
        model = Sequential.from_config(config["config"])
    except (TypeError, ValueError, KeyError) as error:
        raise ValueError(f"{path!r} holds a model config crnn can't rebuild: {error}") from error
    if not model.built:
        raise ValueError(f"{path!r} holds a model without an input shape")
    _check_model_weights(path, model, weights)
    model.set_weights(weights)
    for layer_name, arrays in states:
        model.get_layer(layer_name)._set_state_arrays(arrays)
    compile_config = header.get("compile_config")
    if compile and compile_config:
        model.compile(optimizer=compile_config["optimizer"], loss=compile_config["loss"],
                      metrics=[m for m in compile_config.get("metrics", []) if m])
        if optimizer_state:
            model.optimizer.set_state(optimizer_state)
    return model
