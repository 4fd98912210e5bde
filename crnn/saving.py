"""Saving and loading models and weights: one file, no pickle, written atomically.

File format: a NumPy ``.npz`` archive (a zip of ``.npy`` arrays, readable with
``np.load(path, allow_pickle=False)``) holding

* ``crnn_header``: UTF-8 JSON as a uint8 array: format name and version, the kind of
  file (``"model"`` or ``"weights"``), the model config, the compile config, and how many
  weight / optimizer / state arrays follow (with their shapes, to check them on load);
* ``weight_00000``...: the model's weights, in ``model.get_weights()`` order;
* ``optimizer_00000``...: the optimizer state (iterations, then slots);
* ``state_00000``...: the current states of stateful layers, layer by layer.

Guarantees:

* **Atomic.** The file is written to a temporary file in the same directory
  (``.<name>.pid<pid>.<random>.tmp``), flushed to disk and moved into place with
  ``os.replace``, so a crash mid-save leaves any earlier file intact. A save that is killed
  can leave its temporary file behind; the next save to the same path removes such files,
  before it writes, once they are stale: not written for a minute and either their
  creating process (the pid in the name) no longer runs on this machine, or not written
  for an hour (a process on another machine sharing the directory, or a reused pid).
  Files of the older naming ``.<name>.<random>.tmp`` follow the one-hour rule. Nothing
  else is ever removed.
* **No pickle, no code.** Arrays are read with their ``.npy`` headers parsed as literals;
  only bool, integer and float arrays are accepted; the config names only crnn classes.
* **Bounded cost on hostile files.** Everything a file declares is checked before memory is
  allocated for it: the archive's member count, each array's ``.npy`` header (parsed
  without reading the data, at most 4 KiB), the declared sizes against the arrays' byte
  counts and against the file's own size (decompressed arrays may total at most 4 times
  the file plus 1 MiB: no zip bombs), the JSON header (at most 4 MiB, nested at most 64
  deep, at most 1024 layers), and each weight a layer asks for against the stored array's
  shape and dtype *before* the layer allocates it. Layers are built without running their
  initializers (the stored arrays become the weights), so a model whose weights really are
  large loads in time and memory proportional to its size, and a small file declaring a
  huge layer fails at once.
* **Only ValueError.** A damaged, truncated, foreign or hostile file raises ``ValueError``
  naming the file (a missing file raises ``FileNotFoundError``).

Example:
    >>> import os, tempfile
    >>> import numpy as np, crnn
    >>> model = crnn.Sequential([crnn.layers.GRU(4, input_shape=(5, 2)), crnn.layers.Dense(1)])
    >>> path = os.path.join(tempfile.mkdtemp(), "forecaster.crnn")
    >>> model.save(path)
    >>> same = crnn.load_model(path)
    >>> x = np.ones((3, 5, 2), dtype="float32")
    >>> bool(np.array_equal(same.predict(x, verbose=0), model.predict(x, verbose=0)))
    True
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import json
import os
import re
import stat
import struct
import tempfile
import time
import zipfile
from typing import TYPE_CHECKING

import numpy as np

from crnn._registry import class_config
from crnn.layers.base import weights_from

if TYPE_CHECKING:
    from crnn.models import Sequential

__all__ = ["save_model", "load_model", "save_weights", "load_weights"]

FORMAT = "crnn"
VERSION = 1
_HEADER = "crnn_header"
STREAM_STATES = "stream_states"   # the kind of crnn.streaming.StreamPool.save_states files

# Limits on what a file can make crnn do (see "Bounded cost" above).
_MAX_MEMBERS = 100_000          # arrays in one archive
_MAX_NPY_HEADER = 4096          # bytes of one .npy header (NumPy writes about 128)
_MAX_JSON = 4 * 2**20           # bytes of the JSON header
_MAX_JSON_DEPTH = 64            # nesting of the JSON header
_MAX_LAYERS = 1024              # layers in a model config
_EXPANSION = 4                  # decompressed arrays <= _EXPANSION * file size + _SLACK
_SLACK = 2**20
_CHUNK = 2**20                  # bytes read at a time (the only copy beyond the arrays)

# Temporary files of interrupted saves (see "Atomic" above).
_STALE_IDLE_S = 60
_STALE_AGE_S = 3600


# The model classes ``load_model`` can rebuild, by the class name a file records. Model
# modules import this one (never the reverse) and register their classes; the built-in
# ones are also named here as "module:attribute", imported on first use, so that
# ``load_model`` works in a process that has not imported ``crnn.models`` yet.
_MODEL_CLASSES = {"Sequential": "crnn.models:Sequential"}


def register_model_class(cls):
    """Let ``load_model`` rebuild models of class ``cls`` (by its ``__name__``).

    Args:
        cls: a model class with ``from_config``, ``set_weights`` and ``compile``.

    Returns:
        ``cls``, so that this works as a class decorator.
    """
    _MODEL_CLASSES[cls.__name__] = cls
    return cls


def _model_class(name):
    entry = _MODEL_CLASSES.get(name) if isinstance(name, str) else None
    if isinstance(entry, str):
        module, attr = entry.split(":")
        entry = _MODEL_CLASSES[name] = getattr(importlib.import_module(module), attr)
    return entry


def _name(prefix, k):
    return f"{prefix}_{k:05d}"


# --------------------------------------------------------------------------- writing


def _temp_pattern(basename):
    """Names of crnn's temporary files for ``basename``: (pid or None) in group 1."""
    return re.compile(r"\." + re.escape(basename) + r"\.(?:pid(\d{1,10})\.)?[a-z0-9_]{8}\.tmp\Z")


def _pid_running(pid):
    """Whether process ``pid`` runs on this machine (True when that can't be told)."""
    if os.name != "posix" or pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OverflowError:
        return False
    except OSError:         # PermissionError: it runs, under another user
        return True
    return True


def _remove_stale_temps(directory, basename, now=None):
    """Remove the stale temporary files of interrupted saves of ``basename`` (see above).

    Never raises: a file that can't be examined or removed is left alone.
    """
    now = time.time() if now is None else now
    pattern = _temp_pattern(basename)
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    for entry in entries:
        match = pattern.match(entry.name)
        if match is None:
            continue
        try:
            info = entry.stat(follow_symlinks=False)
            if not stat.S_ISREG(info.st_mode):
                continue
            idle = now - info.st_mtime
            gone = match.group(1) is not None and not _pid_running(int(match.group(1)))
            if idle >= _STALE_IDLE_S and (gone or idle >= _STALE_AGE_S):
                os.remove(entry.path)
        except OSError:
            continue


def _write_atomically(filepath, arrays, overwrite):
    filepath = os.fspath(filepath)
    if not overwrite and os.path.exists(filepath):
        raise FileExistsError(f"{filepath!r} exists and overwrite=False; pass overwrite=True "
                              f"or choose another path")
    directory = os.path.dirname(os.path.abspath(filepath))
    basename = os.path.basename(filepath)
    # Named here: the temporary file's error would name a path the caller never gave.
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"can't save to {filepath!r}: the folder {directory!r} does "
                                f"not exist; create it first")
    if os.path.isdir(filepath):
        raise IsADirectoryError(f"can't save to {filepath!r}: it is a folder; give a file "
                                f"path such as {os.path.join(filepath, 'model.crnn')!r}")
    # Before writing, so that the space of killed saves is free for this one.
    _remove_stale_temps(directory, basename)
    fd, tmp = tempfile.mkstemp(prefix=f".{basename}.pid{os.getpid()}.", suffix=".tmp",
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


def save_model(model: Sequential, filepath: str | os.PathLike, overwrite: bool = True,
               include_optimizer: bool = True) -> None:
    """Save a ``Sequential`` model to one file (see the module notes for the format).

    What ``model.save`` does: config, weights, compile config, optimizer state and the
    stateful layers' states, written atomically.

    Args:
        model: the model, built.
        filepath: destination path (any extension; ``.crnn`` is customary).
        overwrite: replace an existing file (default True).
        include_optimizer: also save the optimizer state, so that training resumes
            exactly (default True).

    Raises:
        ValueError: if the model is not built.
        FileExistsError: if the file exists and ``overwrite`` is False.
        FileNotFoundError: if the destination folder does not exist.
        IsADirectoryError: if ``filepath`` is a folder.

    Example:
        >>> import os, tempfile
        >>> import crnn
        >>> model = crnn.Sequential([crnn.layers.Dense(2, input_shape=(3,))])
        >>> model.compile(optimizer="adam", loss="mse")
        >>> path = os.path.join(tempfile.mkdtemp(), "model.crnn")
        >>> crnn.saving.save_model(model, path)
        >>> type(crnn.saving.load_model(path).optimizer).__name__
        'Adam'
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
        "config": class_config(model),
        "compile_config": model._compile_config if model.optimizer is not None else None,
        "weight_shapes": [list(w.shape) for w in model.weights],
        "n_optimizer": len(optimizer_state),
        "states": state_counts,
    }
    arrays[_HEADER] = _header_array(header)
    _write_atomically(filepath, arrays, overwrite)


def save_weights(model: Sequential, filepath: str | os.PathLike,
                 overwrite: bool = True) -> None:
    """Save only the weights of ``model`` (restore with ``load_weights``), atomically.

    Args:
        model: a built model.
        filepath: destination path.
        overwrite: replace an existing file (default True).

    Raises:
        ValueError: if the model is not built.
        FileExistsError: if the file exists and ``overwrite`` is False.
        FileNotFoundError: if the destination folder does not exist.
        IsADirectoryError: if ``filepath`` is a folder.

    Example:
        >>> import os, tempfile
        >>> import crnn
        >>> model = crnn.Sequential([crnn.layers.Dense(2, input_shape=(3,))])
        >>> path = os.path.join(tempfile.mkdtemp(), "weights.crnn")
        >>> crnn.saving.save_weights(model, path)
        >>> crnn.saving.load_model(path)
        Traceback (most recent call last):
        ...
        ValueError: '...weights.crnn' holds only weights (written by save_weights); ...
    """
    if not model.built:
        raise ValueError(f"model {model.name!r} is not built, so it has no weights to save")
    arrays = _weights_arrays(model)
    header = {"format": FORMAT, "version": VERSION, "kind": "weights",
              "weight_shapes": [list(w.shape) for w in model.weights]}
    arrays[_HEADER] = _header_array(header)
    _write_atomically(filepath, arrays, overwrite)


# --------------------------------------------------------------------------- reading


class _FileError(ValueError):
    """A ValueError about the file itself, passed on unchanged through the rebuild."""


# A .npy member's dtype: bool, (u)int or float, any byte order. Anything else (objects,
# records, strings, complex, datetimes, subarrays) is refused before NumPy parses it.
_DESCR = re.compile(r"[<>|=]?(?:b1|[iu][1248]|f[248])\Z")
_MEMBER = re.compile(r"(crnn_header|stream_ids|stream_generations"
                     r"|(?:weight|optimizer|state)_\d{5,6})\.npy\Z")


class _Array:
    """What a member's ``.npy`` header declares: dtype, shape, order, where the data starts."""

    __slots__ = ("dtype", "fortran", "info", "nbytes", "offset", "shape")

    def __init__(self, info, dtype, shape, fortran, offset, nbytes):
        self.info, self.dtype, self.shape = info, dtype, shape
        self.fortran, self.offset, self.nbytes = fortran, offset, nbytes


def _is_count(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _json_depth_ok(value):
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > _MAX_JSON_DEPTH:
            return False
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return True


def _zip_member_count(f, size):
    """The member count from the end-of-central-directory record, read before zipfile."""
    tail = min(size, 22 + 65535)
    f.seek(size - tail)
    data = f.read(tail)
    at = data.rfind(b"PK\x05\x06")
    if at < 0 or len(data) - at < 22:
        return None
    count = struct.unpack("<H", data[at + 10:at + 12])[0]
    if count != 0xFFFF:
        return count
    # Zip64: the locator sits just before the record and points to the zip64 record.
    locator = data[at - 20:at] if at >= 20 else b""
    if len(locator) != 20 or locator[:4] != b"PK\x06\x07":
        return None
    offset = struct.unpack("<Q", locator[8:16])[0]
    if offset > size - 56:
        return None
    f.seek(offset)
    record = f.read(56)
    if len(record) != 56 or record[:4] != b"PK\x06\x06":
        return None
    return struct.unpack("<Q", record[32:40])[0]


class _Archive:
    """A crnn file, checked member by member before any array is read.

    Every way the file can be broken or hostile becomes a ``ValueError`` naming it.
    Arrays are read one at a time, on demand, into arrays of their declared size.
    """

    def __init__(self, filepath):
        self.path = os.fspath(filepath)
        if not os.path.exists(self.path):
            raise FileNotFoundError(f"no such file: {self.path!r}")
        try:
            self._file = open(self.path, "rb")  # noqa: SIM115 (closed by close())
        except IsADirectoryError:
            raise _FileError(f"{self.path!r} is a directory, not a crnn model or weights "
                             f"file") from None
        self.zip = None
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _fail(self, message):
        return _FileError(f"{self.path!r} {message}")

    @contextlib.contextmanager
    def _reading(self, key):
        """Any failure but a ``_FileError`` while reading entry ``key`` means a damaged file."""
        try:
            yield
        except _FileError:
            raise
        except Exception as error:  # noqa: BLE001 (any failure here means a bad file)
            raise self._fail(f"is damaged: entry {key!r} can't be read "
                             f"({type(error).__name__}: {error})") from None

    def _open(self):
        size = os.fstat(self._file.fileno()).st_size
        count = _zip_member_count(self._file, size) if size >= 22 else None
        if count is None:
            raise self._fail("is not a crnn model or weights file: it is not a zip/npz "
                             "archive (it may be truncated, or a file from another program)")
        if count > _MAX_MEMBERS:
            raise self._fail(f"declares {count} archive members, more than the "
                             f"{_MAX_MEMBERS} a crnn file may hold; refusing to read it")
        try:
            self._file.seek(0)
            self.zip = zipfile.ZipFile(self._file)
            infos = self.zip.infolist()
        except Exception as error:  # noqa: BLE001 (any failure here means a bad file)
            raise self._fail(f"is not a crnn model or weights file: its zip structure is "
                             f"damaged ({type(error).__name__}: {error})") from None
        if not any(info.filename == _HEADER + ".npy" for info in infos):
            raise self._fail(
                f"is not a crnn model or weights file: it has no {_HEADER!r} entry (found "
                f"entries {sorted(info.filename[:40] for info in infos[:5])})")
        members = {}
        for info in infos:
            match = _MEMBER.match(info.filename)
            if match is None:
                raise self._fail(f"is damaged: unexpected entry {info.filename[:80]!r}")
            key = match.group(1)
            if key in members:
                raise self._fail(f"is damaged: entry {key!r} appears twice")
            if info.flag_bits & 0x1:
                raise self._fail(f"is damaged: entry {key!r} is encrypted")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise self._fail(f"is damaged: entry {key!r} uses an unsupported "
                                 f"compression (method {info.compress_type})")
            members[key] = info
        declared = sum(info.file_size for info in members.values())
        if declared > _EXPANSION * size + _SLACK:
            raise self._fail(
                f"declares {declared} bytes of arrays in a file of {size} bytes (more than "
                f"{_EXPANSION} times its size): a damaged file or a zip bomb; refusing to "
                f"decompress it")
        self._infos = members
        self._arrays = {}
        header = self.declared(_HEADER)
        if header.dtype != np.uint8 or len(header.shape) != 1 or header.nbytes > _MAX_JSON:
            raise self._fail(f"has a damaged header: {_HEADER!r} must be a 1-D uint8 array "
                             f"of at most {_MAX_JSON} bytes, found {header.dtype} "
                             f"{header.shape}")
        try:
            self.header = json.loads(self.read(_HEADER).tobytes().decode("utf-8"))
        except (ValueError, RecursionError) as error:
            raise self._fail(f"has a damaged header: {type(error).__name__}: "
                             f"{str(error)[:200]}") from None
        if not _json_depth_ok(self.header):
            raise self._fail(f"has a damaged header: JSON nested more than "
                             f"{_MAX_JSON_DEPTH} levels deep")
        self._check_header(set(members))

    def _check_header(self, present):
        header = self.header
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise self._fail(f"is not a crnn file (its header has no format={FORMAT!r})")
        if header.get("version") != VERSION:
            raise self._fail(f"uses crnn file format version {header.get('version')!r}, "
                             f"this crnn reads version {VERSION}")
        kind = header.get("kind")
        if kind not in ("model", "weights", STREAM_STATES):
            raise self._fail(f"has a damaged header: kind must be 'model', 'weights' or "
                             f"{STREAM_STATES!r}, found {kind!r}")
        self.kind = kind
        if kind == STREAM_STATES:
            self._check_stream_states(present)
            return
        shapes = header.get("weight_shapes")
        if not isinstance(shapes, list) or not all(
                isinstance(s, list) and len(s) <= 32 and all(_is_count(v) for v in s)
                for s in shapes):
            raise self._fail("has a damaged header: weight_shapes must be a list of shapes "
                             "(lists of non-negative ints)")
        self.n_weights = len(shapes)
        self.n_optimizer = 0
        self.states = []
        if kind == "model":
            n_optimizer = header.get("n_optimizer")
            if not _is_count(n_optimizer):
                raise self._fail(f"has a damaged header: n_optimizer must be a "
                                 f"non-negative int, found {n_optimizer!r}")
            states = header.get("states")
            if not isinstance(states, list) or not all(
                    isinstance(e, list) and len(e) == 2 and isinstance(e[0], str)
                    and _is_count(e[1]) for e in states):
                raise self._fail("has a damaged header: states must be a list of "
                                 "[layer name, count] pairs")
            names = [e[0] for e in states]
            if len(set(names)) != len(names):
                raise self._fail("has a damaged header: a layer's states are listed twice")
            self.n_optimizer = n_optimizer
            self.states = [tuple(e) for e in states]
        n_states = sum(count for _, count in self.states)
        expected = {_HEADER}
        for prefix, n in (("weight", self.n_weights), ("optimizer", self.n_optimizer),
                          ("state", n_states)):
            if n > _MAX_MEMBERS:
                raise self._fail(f"has a damaged header: it declares {n} {prefix} arrays")
            expected.update(_name(prefix, k) for k in range(n))
        if present != expected:
            missing = sorted(expected - present)[:3]
            extra = sorted(present - expected)[:3]
            raise self._fail(
                "is damaged: its entries don't match its header"
                + (f"; missing {missing}" if missing else "")
                + (f"; unexpected {extra}" if extra else ""))
        for k, shape in enumerate(shapes):
            array = self.declared(_name("weight", k), kinds="f")
            if array.shape != tuple(shape):
                raise self._fail(f"is damaged: weight {k} has shape {array.shape}, the "
                                 f"header says {tuple(shape)}")

    def _check_stream_states(self, present):
        """A ``StreamPool.save_states`` file: stream ids, generations, one array a state."""
        shapes = self.header.get("state_shapes")
        if not isinstance(shapes, list) or len(shapes) > _MAX_MEMBERS or not all(
                isinstance(s, list) and len(s) <= 32 and all(_is_count(v) for v in s)
                for s in shapes):
            raise self._fail("has a damaged header: state_shapes must be a list of shapes "
                             "(lists of non-negative ints)")
        self.n_weights = 0
        self.n_optimizer = 0
        self.states = []
        expected = {_HEADER, "stream_ids", "stream_generations"}
        expected.update(_name("state", k) for k in range(len(shapes)))
        if present != expected:
            raise self._fail("is damaged: its entries don't match its header")

    # ----------------------------------------------------------------- members

    def declared(self, key, kinds=None):
        """The dtype/shape an entry declares, from its .npy header (no data read)."""
        if key not in self._arrays:
            self._arrays[key] = self._parse_npy_header(key)
        array = self._arrays[key]
        if kinds is not None and array.dtype.kind not in kinds:
            raise self._fail(f"is damaged: entry {key!r} has dtype {array.dtype}, expected "
                             f"{'a float' if kinds == 'f' else 'an integer'} array")
        return array

    def _parse_npy_header(self, key):
        info = self._infos[key]
        with self._reading(key), self.zip.open(info) as f:
            prefix = f.read(8)
            if len(prefix) != 8 or prefix[:6] != b"\x93NUMPY" or prefix[6] not in (1, 2, 3):
                raise self._fail(f"is damaged: entry {key!r} is not a .npy array")
            width = 2 if prefix[6] == 1 else 4
            raw = f.read(width)
            if len(raw) != width:
                raise self._fail(f"is damaged: entry {key!r} is truncated")
            length = int.from_bytes(raw, "little")
            if length > _MAX_NPY_HEADER:
                raise self._fail(f"is damaged: entry {key!r} has a {length}-byte .npy "
                                 f"header (at most {_MAX_NPY_HEADER} accepted)")
            text = f.read(length)
        if len(text) != length:
            raise self._fail(f"is damaged: entry {key!r} is truncated")
        try:
            fields = ast.literal_eval(text.decode("utf-8" if prefix[6] == 3 else "latin1"))
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError,
                UnicodeDecodeError):
            fields = None
        if not isinstance(fields, dict) or set(fields) != {"descr", "fortran_order", "shape"}:
            raise self._fail(f"is damaged: entry {key!r} has an invalid .npy header")
        descr, fortran, shape = fields["descr"], fields["fortran_order"], fields["shape"]
        if not isinstance(descr, str) or not _DESCR.match(descr):
            raise self._fail(f"is damaged: entry {key!r} has dtype {str(descr)[:40]!r}; "
                             f"only bool, integer and float arrays are accepted")
        if not isinstance(fortran, bool) or not isinstance(shape, tuple) or len(shape) > 32 \
                or not all(_is_count(v) for v in shape):
            raise self._fail(f"is damaged: entry {key!r} has an invalid .npy header")
        dtype = np.dtype(descr)
        nbytes = dtype.itemsize
        for v in shape:
            nbytes *= v
        offset = len(prefix) + width + length
        if info.file_size != offset + nbytes:
            raise self._fail(f"is damaged: entry {key!r} declares shape {shape} "
                             f"({nbytes} bytes) but its zip entry holds "
                             f"{info.file_size - offset} bytes of data")
        return _Array(info, dtype, shape, fortran, offset, nbytes)

    def read(self, key):
        """The entry's array, read into an array of its declared size (C-contiguous)."""
        array = self.declared(key)
        shape = array.shape[::-1] if array.fortran else array.shape
        out = np.empty(shape, array.dtype)
        buffer = memoryview(out.reshape(-1).view(np.uint8))
        with self._reading(key), self.zip.open(array.info) as f:
            f.read(array.offset)
            done = 0
            while done < array.nbytes:
                chunk = f.read(min(_CHUNK, array.nbytes - done))
                if not chunk:
                    raise self._fail(f"is damaged: entry {key!r} is truncated")
                buffer[done:done + len(chunk)] = chunk
                done += len(chunk)
            f.read(1)       # reaches the end of the entry, where zipfile checks the CRC
        if array.fortran:
            out = np.ascontiguousarray(out.T)
        if not out.dtype.isnative:
            out = out.astype(out.dtype.newbyteorder("="))
        return out

    def close(self):
        if self.zip is not None:
            self.zip.close()
        self._file.close()


def load_weights(model: Sequential, filepath: str | os.PathLike) -> None:
    """Load weights from a ``save_weights`` or ``save`` file into ``model``.

    The stored shapes are checked against the model's from the arrays' headers before any
    data is read; the weights are set all at once (nothing changes if anything fails).

    Args:
        model: a built model with the same weight shapes as the saved one.
        filepath: the file.

    Raises:
        FileNotFoundError: if there is no such file.
        ValueError: if the model is not built, or the file is damaged, hostile, or holds
            weights of other shapes.

    Example:
        >>> import os, tempfile
        >>> import numpy as np, crnn
        >>> model = crnn.Sequential([crnn.layers.Dense(2, input_shape=(3,))])
        >>> path = os.path.join(tempfile.mkdtemp(), "model.crnn")
        >>> model.save(path)                    # a whole-model file holds weights too
        >>> twin = crnn.Sequential([crnn.layers.Dense(2, input_shape=(3,))])
        >>> crnn.saving.load_weights(twin, path)
        >>> all(np.array_equal(a, b) for a, b in zip(twin.get_weights(), model.get_weights()))
        True
    """
    if not model.built:
        raise ValueError(f"model {model.name!r} must be built before load_weights; declare its "
                         f"input shape or call it on data first")
    with _plain_value_errors():
        weights = _read_weights_for(model, filepath)
    model.set_weights(weights)


def _read_weights_for(model, filepath):
    archive = _Archive(filepath)
    try:
        own = model.weights
        stored = [archive.declared(_name("weight", k)) for k in range(archive.n_weights)]
        if len(own) != len(stored) or any(a.shape != b.shape for a, b in zip(own, stored)):
            raise ValueError(
                f"the weights in {archive.path!r} don't fit model {model.name!r}: the file "
                f"holds {len(stored)} arrays of shapes {[b.shape for b in stored]}, the model "
                f"has {len(own)} of shapes {[tuple(w.shape) for w in own]}"
            )
        return [archive.read(_name("weight", k)) for k in range(archive.n_weights)]
    finally:
        archive.close()


def load_model(filepath: str | os.PathLike, compile: bool = True) -> Sequential:
    """Load a model saved with ``model.save``: config, weights, optimizer and RNN states.

    The file is not trusted: see the module notes for what is checked, and in which order,
    so that a damaged or hostile file costs little time and memory. Keras
    ``.keras``/``.h5`` files are handed to ``crnn.interop.keras.load_model``.

    Args:
        filepath: the file.
        compile: recompile the model with the saved optimizer (and its state), loss and
            metrics (default True).

    Returns:
        A ``Sequential`` model whose predictions are bit-identical to the saved one's and
        whose training continues where it stopped.

    Raises:
        FileNotFoundError: if there is no such file.
        ValueError: if the file is damaged, truncated, hostile, or not a crnn model file.
        ImportError: if it is a Keras file and h5py is not installed.

    Example:
        >>> import os, tempfile
        >>> import numpy as np, crnn
        >>> model = crnn.Sequential([crnn.layers.LSTM(3, stateful=True,
        ...                                           batch_input_shape=(2, 4, 1))])
        >>> _ = model.predict(np.ones((2, 4, 1), "float32"), verbose=0)   # states move
        >>> path = os.path.join(tempfile.mkdtemp(), "model.crnn")
        >>> model.save(path)
        >>> same = crnn.saving.load_model(path)
        >>> all(np.array_equal(a, b) for a, b in zip(same.get_states(), model.get_states()))
        True
    """
    from crnn.interop import keras as keras_files  # Keras .keras/.h5 files (issue 8)

    if keras_files.is_keras_file(filepath):
        return keras_files.load_model(filepath, compile=compile)
    with _plain_value_errors():
        archive = _Archive(filepath)
        try:
            return _rebuild(archive, compile)
        finally:
            archive.close()


@contextlib.contextmanager
def _plain_value_errors():
    """Hand the file errors on as plain ``ValueError`` (the documented type)."""
    try:
        yield
    except _FileError as error:
        raise ValueError(str(error)) from None


def _rebuild(archive, compile):
    path, header = archive.path, archive.header
    if archive.kind != "model":
        raise _FileError(f"{path!r} holds only weights (written by save_weights); build the "
                         f"model and call model.load_weights({path!r}) instead")
    config = header.get("config")
    model_class = _model_class(config.get("class_name")) if isinstance(config, dict) else None
    if model_class is None or not isinstance(config.get("config"), dict):
        raise _FileError(f"{path!r} has a damaged header: no Sequential model config")
    layers = config["config"].get("layers")
    if isinstance(layers, list) and len(layers) > _MAX_LAYERS:
        # Rebuilding costs time quadratic in the layer count (unique names).
        raise _FileError(f"{path!r} declares {len(layers)} layers, more than the "
                         f"{_MAX_LAYERS} crnn loads")

    provided = []

    def provide(owner, shape, dtype):
        k = len(provided)
        if k >= archive.n_weights:
            raise _FileError(f"{path!r} is damaged: its config asks for more weights than "
                             f"the {archive.n_weights} it holds (at {owner}, shape {shape})")
        key = _name("weight", k)
        stored = archive.declared(key, kinds="f")
        if stored.shape != shape or stored.dtype.newbyteorder("=") != dtype:
            raise _FileError(f"{path!r} is damaged: its config declares {owner} as "
                             f"{dtype.name} {shape}, but weight {k} is stored as "
                             f"{stored.dtype.name} {stored.shape}")
        provided.append(archive.read(key))
        return provided[-1]

    try:
        with weights_from(provide):
            model = model_class.from_config(config["config"])
    except _FileError:
        raise
    except Exception as error:  # noqa: BLE001 (whatever the config makes the layers raise)
        raise _FileError(f"{path!r} holds a model config crnn can't rebuild: "
                         f"{type(error).__name__}: {str(error)[:500]}") from None
    if not model.built:
        raise _FileError(f"{path!r} holds a model without an input shape")
    weights = model.weights
    if len(weights) != len(provided) or any(a is not b for a, b in zip(weights, provided)):
        raise _FileError(f"{path!r} is damaged: it holds {archive.n_weights} weights, its "
                         f"config builds a model with {len(weights)}")
    _restore_states(archive, model)
    compile_config = header.get("compile_config")
    if archive.n_optimizer and not compile_config:
        raise _FileError(f"{path!r} has a damaged header: optimizer state without a "
                         f"compile config")
    if compile and compile_config:
        _restore_training(archive, model, compile_config)
    return model


def _state_slots(layer):
    inner = layer._inner_layers() if hasattr(layer, "_inner_layers") else [layer]
    return sum(getattr(l, "_n_states", 0) for l in inner if getattr(l, "stateful", False))


def _restore_states(archive, model):
    path = archive.path
    stored = dict(archive.states)
    total = 0
    for layer_name, count in archive.states:
        layers = [layer for layer in model.layers if layer.name == layer_name]
        if not layers or _state_slots(layers[0]) != count:
            raise _FileError(f"{path!r} is damaged: it holds {count} state arrays for layer "
                             f"{layer_name!r}, which the model doesn't have"
                             if not layers else
                             f"{path!r} is damaged: it holds {count} state arrays for layer "
                             f"{layer_name!r}, which has {_state_slots(layers[0])}")
        keys = [_name("state", total + k) for k in range(count)]
        total += count
        for key in keys:
            archive.declared(key, kinds="f")
        arrays = [archive.read(key) for key in keys]
        try:
            layers[0]._set_state_arrays(arrays)
        except (TypeError, ValueError) as error:
            raise _FileError(f"{path!r} is damaged: {error}") from None
    for layer in model.layers:
        if _state_slots(layer) and layer.name not in stored:
            raise _FileError(f"{path!r} is damaged: it holds no states for stateful layer "
                             f"{layer.name!r}")


def _restore_training(archive, model, compile_config):
    path = archive.path
    if not isinstance(compile_config, dict) or "optimizer" not in compile_config \
            or "loss" not in compile_config \
            or not isinstance(compile_config.get("metrics", []), list):
        raise _FileError(f"{path!r} has a damaged header: invalid compile config")
    from crnn.trainer import compile_arguments

    try:
        model.compile(**compile_arguments(compile_config))
    except Exception as error:  # noqa: BLE001 (any failure here means a bad file)
        raise _FileError(f"{path!r} holds a compile config crnn can't rebuild: "
                         f"{type(error).__name__}: {str(error)[:500]}") from None
    if not archive.n_optimizer:
        return
    iterations = archive.declared(_name("optimizer", 0), kinds="iu")
    if iterations.shape != ():
        raise _FileError(f"{path!r} is damaged: the optimizer's iteration count must be a "
                         f"scalar, found shape {iterations.shape}")
    params = model.trainable_weights
    n_slots = archive.n_optimizer - 1
    per_param = len(model.optimizer._slot_names())
    if n_slots and n_slots != per_param * len(params):
        raise _FileError(f"{path!r} is damaged: it holds {n_slots} optimizer slot arrays, "
                         f"the model's {type(model.optimizer).__name__} needs {per_param} "
                         f"for each of its {len(params)} trainable weights")
    for k in range(n_slots):
        slot = archive.declared(_name("optimizer", k + 1), kinds="f")
        if slot.shape != params[k % len(params)].shape:
            raise _FileError(f"{path!r} is damaged: optimizer slot {k} has shape "
                             f"{slot.shape}, its weight has {params[k % len(params)].shape}")
    state = [archive.read(_name("optimizer", k)) for k in range(archive.n_optimizer)]
    if int(state[0]) < 0:
        raise _FileError(f"{path!r} is damaged: negative optimizer iteration count")
    try:
        model.optimizer.set_state(state)
    except (TypeError, ValueError) as error:
        raise _FileError(f"{path!r} is damaged: {error}") from None


# ------------------------------------------------------------------ bytes
# The same format as a file, for sending a model to another process (Dask workers, MPI
# ranks): written and read through the file functions above, in a private temporary
# directory, so the bytes and a saved file are interchangeable.

__all__ += ["to_bytes", "from_bytes"]


def to_bytes(model: Sequential, include_optimizer: bool = True) -> bytes:
    """The model in crnn's pickle-free file format, as bytes.

    Args:
        model: a built ``Sequential`` model.
        include_optimizer: also include the optimizer state (default True).

    Returns:
        The bytes of the file ``save_model`` would write (``from_bytes`` reads them).

    Raises:
        ValueError: if the model is not built.

    Example:
        >>> import crnn
        >>> model = crnn.Sequential([crnn.layers.Dense(2, input_shape=(3,))])
        >>> data = crnn.saving.to_bytes(model)
        >>> same = crnn.saving.from_bytes(data)
        >>> all((a == b).all() for a, b in zip(same.get_weights(), model.get_weights()))
        True
    """
    with tempfile.TemporaryDirectory(prefix="crnn-bytes-") as directory:
        path = os.path.join(directory, "model.crnn")
        save_model(model, path, include_optimizer=include_optimizer)
        with open(path, "rb") as f:
            return f.read()


def from_bytes(data: bytes | bytearray | memoryview, compile: bool = True) -> Sequential:
    """Rebuild a model from ``to_bytes`` output (or a saved file's bytes).

    Args:
        data: ``bytes``, ``bytearray`` or ``memoryview``.
        compile: recompile with the saved optimizer state, loss and metrics (default True).

    Returns:
        A ``Sequential`` model, as ``load_model`` returns it.

    Raises:
        TypeError: if ``data`` is not bytes-like.
        ValueError: if ``data`` is not a crnn model (damaged, truncated, weights only...).

    Example:
        >>> import crnn
        >>> model = crnn.Sequential([crnn.layers.Dense(2, input_shape=(3,))])
        >>> crnn.saving.from_bytes(model.to_bytes()).count_params()
        8
        >>> crnn.saving.from_bytes(b"not a model")
        Traceback (most recent call last):
        ...
        ValueError: the data passed to from_bytes is not a crnn model or weights file: ...
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes (from model.to_bytes()), received "
                        f"{type(data).__name__}")
    with tempfile.TemporaryDirectory(prefix="crnn-bytes-") as directory:
        path = os.path.join(directory, "model.crnn")
        with open(path, "wb") as f:
            f.write(data)
        try:
            return load_model(path, compile=compile)
        except ValueError as error:
            raise ValueError(str(error).replace(repr(path), "the data passed to from_bytes")
                             ) from None
