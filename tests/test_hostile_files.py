"""Loading damaged and hostile files: only ValueError, bounded memory; no temp litter.

The hostile loads run in a child process under an address-space limit
(``resource.setrlimit(RLIMIT_AS)``) and a timeout, so that a regression (a file that makes
crnn allocate gigabytes or spin) fails the test instead of eating the machine.
"""

import copy
import io
import json
import os
import signal
import struct
import subprocess
import sys
import textwrap
import time
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import crnn
from crnn import layers as L
from crnn import saving

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Children import the crnn this process imported (the installed one under .ci/run), and run
# from its folder: from the source root, `-c` would import the uncompiled sources.
PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(crnn.__file__)))
LIMIT = 1 << 30          # address space of the child: 1 GiB
TIMEOUT = 120            # seconds for the whole batch of hostile loads

resource = pytest.importorskip("resource")


# --------------------------------------------------------------------------- helpers


def _npy(array):
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def _npy_header(descr, shape, fortran=False):
    """A .npy version-1 header declaring ``descr``/``shape`` (padded as NumPy pads it)."""
    text = repr({"descr": descr, "fortran_order": fortran, "shape": tuple(shape)})
    pad = 64 - (10 + len(text) + 1) % 64
    text = text + " " * pad + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin1")


def _members(path):
    with zipfile.ZipFile(path) as archive:
        return {name[:-4]: archive.read(name) for name in archive.namelist()}


def _header(members):
    return json.loads(np.load(io.BytesIO(members["crnn_header"])).tobytes())


def _write(path, members, header=None, compression=zipfile.ZIP_STORED):
    members = dict(members)
    if header is not None:
        raw = header if isinstance(header, bytes) else json.dumps(header).encode()
        members["crnn_header"] = _npy(np.frombuffer(raw, np.uint8))
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name + ".npy", data)
    return str(path)


def _edited(src, dst, edit=None, members_edit=None, compression=zipfile.ZIP_STORED):
    members = _members(src)
    header = _header(members)
    if edit is not None:
        edit(header)
    members["crnn_header"] = _npy(np.frombuffer(json.dumps(header).encode(), np.uint8))
    if members_edit is not None:
        members_edit(members)
    return _write(dst, members, compression=compression)


def _layer_config(header, index):
    return header["config"]["config"]["layers"][index]["config"]


def _zip_bomb(path, n_mib):
    """A stored-looking crnn weight that inflates to ``n_mib`` MiB of zeros (~1 KB/MiB).

    Built from one compressed MiB repeated: after a full flush a deflate block does not
    depend on what came before, so the stream is written without inflating anything.
    """
    header_bytes = _npy_header("<f4", (n_mib * 2**20 // 4,))
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = compressor.compress(header_bytes) + compressor.flush(zlib.Z_FULL_FLUSH)
    zeros = bytes(2**20)
    compressor.compress(zeros)
    block = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    tail = compressor.flush()
    body = head + block * n_mib + tail
    crc = zlib.crc32(header_bytes)
    for _ in range(n_mib):
        crc = zlib.crc32(zeros, crc)
    size = len(header_bytes) + n_mib * 2**20
    header = {"format": "crnn", "version": 1, "kind": "weights",
              "weight_shapes": [[n_mib * 2**20 // 4]]}
    entries = [("weight_00000.npy", body, crc, size, 8)]
    header_npy = _npy(np.frombuffer(json.dumps(header).encode(), np.uint8))
    entries.append(("crnn_header.npy", header_npy, zlib.crc32(header_npy), len(header_npy), 0))
    out, central = bytearray(), bytearray()
    for name, data, crc, size, method in entries:
        offset = len(out)
        name_bytes = name.encode()
        out += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 0x21, crc,
                           len(data), size, len(name_bytes), 0) + name_bytes + data
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, method, 0, 0x21, crc,
                               len(data), size, len(name_bytes), 0, 0, 0, 0, 0,
                               offset) + name_bytes
    eocd = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(entries), len(entries),
                       len(central), len(out), 0)
    with open(path, "wb") as f:
        f.write(bytes(out + central + eocd))
    return str(path)


_CHILD = textwrap.dedent("""
    import json, resource, sys
    limit = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import numpy as np
    import crnn
    def memory():
        values = {}
        for line in open("/proc/self/status"):
            if line.startswith(("VmHWM", "VmRSS")):
                values[line[:5]] = int(line.split()[1]) * 1024
        return values
    def reset_peak():
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            return memory()["VmRSS"]
        except OSError:
            return None
    results = []
    for path, how in json.loads(sys.stdin.read()):
        start = reset_peak()
        try:
            if how == "weights":
                model = crnn.Sequential([crnn.layers.Dense(2, input_shape=(3,))])
                model.load_weights(path)
            else:
                crnn.load_model(path)
            results.append({"type": None})
        except BaseException as error:
            results.append({"type": type(error).__name__,
                            "value_error": isinstance(error, ValueError),
                            "message": str(error)[:300]})
        results[-1]["growth"] = None if start is None else memory()["VmHWM"] - start
    print(json.dumps(results))
""")


def _load_bounded(cases):
    """Load each ``(path, "model" | "weights")`` in a child limited to LIMIT bytes."""
    env = dict(os.environ, PYTHONPATH=PACKAGE_PARENT, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", _CHILD, str(LIMIT)], input=json.dumps(cases),
                          check=False, capture_output=True, text=True, timeout=TIMEOUT, env=env, cwd=PACKAGE_PARENT)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- the cases


def _base_models(directory):
    crnn.utils.set_random_seed(0)
    rnn = crnn.Sequential([crnn.Input(shape=(5, 3)), L.LSTM(4, return_sequences=True),
                           L.Dense(2)])
    rnn.compile("adam", "mse")
    rnn.fit(np.ones((4, 5, 3)), np.ones((4, 5, 2)), verbose=0)
    rnn.save(directory / "rnn.crnn")
    emb = crnn.Sequential([crnn.Input(shape=(5,), dtype="int32"), L.Embedding(10, 4),
                           L.GRU(3)])
    emb.save(directory / "emb.crnn")
    stateful = crnn.Sequential([crnn.Input(batch_shape=(2, 5, 3)),
                                L.GRU(3, stateful=True), L.Dense(2)])
    stateful.save(directory / "stateful.crnn")
    return directory / "rnn.crnn", directory / "emb.crnn", directory / "stateful.crnn"


def _set(index, key, value):
    def edit(header):
        _layer_config(header, index)[key] = value
    return edit


def _top(key, value):
    def edit(header):
        header[key] = value
    return edit


def _replace_member(name, data):
    def edit(members):
        members[name] = data
    return edit


def _hostile_files(directory):
    rnn, emb, stateful = _base_models(directory)
    deep = b'{"format": "crnn", "version": 1, "kind": "model", "config": ' \
        + b"[" * 100_000 + b"]" * 100_000 + b"}"
    many_layers = _header(_members(rnn))
    many_layers["config"]["config"]["layers"][1:1] = [
        {"class_name": "Dropout", "config": {"rate": 0.0}}] * 5000
    cases = {
        # The examples: a small file declaring a huge layer.
        "dense_units_5e7": (rnn, _set(2, "units", 50_000_000), None),
        "dense_units_float": (rnn, _set(2, "units", 5e7), None),
        "lstm_units_6000": (rnn, _set(1, "units", 6000), None),
        "lstm_units_1e9": (rnn, _set(1, "units", 10**9), None),
        "embedding_1e9": (emb, _set(1, "input_dim", 10**9), None),
        "stateful_batch_1e8": (stateful, _set(0, "batch_shape", [10**8, 5, 3]), None),
        "batch_shape_float": (stateful, _set(0, "batch_shape", [2.5, 5, 3]), None),
        # Type confusion in the header.
        "n_optimizer_null": (rnn, _top("n_optimizer", None), None),
        "n_optimizer_string": (rnn, _top("n_optimizer", "3"), None),
        "n_optimizer_negative": (rnn, _top("n_optimizer", -5), None),
        "n_optimizer_bool": (rnn, _top("n_optimizer", True), None),
        "states_not_a_list": (rnn, _top("states", {"a": 1}), None),
        "weight_shapes_strings": (rnn, _top("weight_shapes", ["x"]), None),
        "config_null": (rnn, _top("config", None), None),
        "layers_not_a_list": (rnn, lambda h: h["config"]["config"].update(layers="abc"), None),
        "compile_config_list": (rnn, _top("compile_config", [1, 2]), None),
        "optimizer_unknown": (rnn, lambda h: h["compile_config"].update(optimizer="nope"),
                              None),
        "too_many_layers": (rnn, lambda h: h.update(many_layers), None),
        # Damaged members.
        "member_without_magic": (rnn, None, _replace_member("weight_00000", b"junk" * 30)),
        "object_dtype": (rnn, None, _replace_member(
            "weight_00000", _npy_header("|O", (3, 16)) + bytes(8 * 48))),
        "complex_dtype": (rnn, None, _replace_member(
            "weight_00000", _npy_header("<c8", (3, 16)) + bytes(8 * 48))),
        "huge_npy_header": (rnn, None, _replace_member(
            "weight_00000", b"\x93NUMPY\x02\x00" + struct.pack("<I", 2**31) + b"{" * 64)),
        "npy_shape_lies": (rnn, None, _replace_member(
            "weight_00000", _npy_header("<f4", (10**6, 10**6)) + bytes(4 * 48))),
        "extra_member": (rnn, None, _replace_member("weight_99999", _npy(np.zeros(3)))),
        "deep_json": (rnn, None, _replace_member("crnn_header", _npy(np.frombuffer(
            deep, np.uint8)))),
    }
    paths = {}
    for name, (src, edit, members_edit) in cases.items():
        paths[name] = _edited(src, directory / f"{name}.crnn", edit, members_edit)
    paths["zip_bomb"] = _zip_bomb(directory / "bomb.crnn", 1100)
    return paths


@pytest.fixture(scope="module")
def hostile_results(tmp_path_factory):
    directory = tmp_path_factory.mktemp("hostile")
    paths = _hostile_files(directory)
    cases = [(path, "weights" if name == "zip_bomb" else "model")
             for name, path in paths.items()]
    cases.append((paths["zip_bomb"], "model"))
    results = _load_bounded(cases)
    named = dict(zip(paths, results))
    named["zip_bomb_load_model"] = results[-1]
    return named, paths


HOSTILE = [
    "dense_units_5e7", "dense_units_float", "lstm_units_6000", "lstm_units_1e9",
    "embedding_1e9", "stateful_batch_1e8", "batch_shape_float", "n_optimizer_null",
    "n_optimizer_string", "n_optimizer_negative", "n_optimizer_bool", "states_not_a_list",
    "weight_shapes_strings", "config_null", "layers_not_a_list", "compile_config_list",
    "optimizer_unknown", "too_many_layers", "member_without_magic", "object_dtype",
    "complex_dtype", "huge_npy_header", "npy_shape_lies", "extra_member", "deep_json",
    "zip_bomb", "zip_bomb_load_model",
]


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_file_raises_value_error_within_bounds(hostile_results, case):
    results, _ = hostile_results
    result = results[case]
    assert result["type"] is not None, f"{case}: the hostile file loaded"
    assert result["value_error"], f"{case}: {result['type']}: {result['message']}"
    assert result["type"] == "ValueError"
    # Every hostile file here is under 3 MB: refusing it must cost about nothing.
    assert result["growth"] is None or result["growth"] < 32 * 2**20, result


@pytest.mark.parametrize("case, match", [
    ("dense_units_5e7", r"dense\w*/kernel as float32 \(4, 50000000\).*stored as float32 \(4, 2\)"),
    ("lstm_units_6000", r"lstm\w*/kernel.*\(3, 24000\)"),
    ("embedding_1e9", r"embeddings.*\(1000000000, 4\)"),
    ("stateful_batch_1e8", r"\(100000000, 3\)"),
    ("n_optimizer_negative", "n_optimizer must be a non-negative int, found -5"),
    ("member_without_magic", "'weight_00000' is not a .npy array"),
    ("object_dtype", "only bool, integer and float arrays"),
    ("zip_bomb", "zip bomb"),
    ("deep_json", "damaged header"),
    ("too_many_layers", "more than the 1024"),
])
def test_hostile_file_messages(hostile_results, case, match):
    import re
    results, paths = hostile_results
    assert re.search(match, results[case]["message"]), results[case]["message"]
    assert os.path.basename(paths[case]) in results[case]["message"]


def test_hostile_loads_in_this_process_also_raise_value_error(hostile_results):
    # The cheap cases once more in-process (no allocation risk), for a direct traceback.
    _, paths = hostile_results
    for case in ("n_optimizer_null", "n_optimizer_negative", "member_without_magic",
                 "object_dtype", "deep_json", "layers_not_a_list"):
        with pytest.raises(ValueError) as info:
            crnn.load_model(paths[case])
        assert type(info.value) is ValueError


def test_deflated_and_fortran_members_still_load(tmp_path):
    crnn.utils.set_random_seed(1)
    model = crnn.Sequential([L.LSTM(3, input_shape=(4, 2)), L.Dense(2)])
    model.save(tmp_path / "m.crnn")
    members = _members(tmp_path / "m.crnn")
    kernel = model.get_weights()[0]
    members["weight_00000"] = _npy(np.asfortranarray(kernel))
    members["weight_00001"] = _npy(model.get_weights()[1].astype(">f4"))
    path = _write(tmp_path / "d.crnn", members, compression=zipfile.ZIP_DEFLATED)
    loaded = crnn.load_model(path)
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == np.float32
    assert loaded.layers[0].kernel.flags.c_contiguous


def test_crc_damage_in_a_deflated_member_is_a_value_error(tmp_path):
    model = crnn.Sequential([L.Dense(3, input_shape=(4,))])
    model.save(tmp_path / "m.crnn")
    path = _write(tmp_path / "d.crnn", _members(tmp_path / "m.crnn"),
                  compression=zipfile.ZIP_DEFLATED)
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("weight_00000.npy")
    with open(path, "rb") as f:
        data = bytearray(f.read())
    data[info.header_offset + 30 + len(info.filename) + info.compress_size // 2] ^= 0x55
    with open(path, "wb") as f:
        f.write(bytes(data))
    with pytest.raises(ValueError, match="damaged"):
        crnn.load_model(path)


def test_a_large_model_loads_in_memory_proportional_to_its_size(tmp_path):
    # 800 units, 200 features: 12.8 MB of float32 weights. Building it the ordinary way
    # (initializers drawing in float64, then the stored arrays read and copied in) costs
    # several times that; loading takes the stored arrays as the weights.
    crnn.utils.set_random_seed(0)
    model = crnn.Sequential([L.LSTM(800, input_shape=(None, 200),
                                    recurrent_initializer="random_normal")])
    path = tmp_path / "big.crnn"
    model.save(path)
    size = os.path.getsize(path)
    child = textwrap.dedent(f"""
        import json, sys
        import numpy as np
        import crnn
        def hwm():
            for line in open("/proc/self/status"):
                if line.startswith(("VmHWM", "VmRSS")):
                    yield int(line.split()[1]) * 1024
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        start = list(hwm())[1]
        model = crnn.load_model({str(path)!r})
        peak = list(hwm())[0]
        print(json.dumps([peak - start, float(np.abs(model.layers[0].recurrent_kernel).sum())]))
    """)
    if not os.path.exists("/proc/self/clear_refs"):
        pytest.skip("needs Linux's /proc/self/clear_refs to measure a peak")
    env = dict(os.environ, PYTHONPATH=PACKAGE_PARENT, OPENBLAS_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", child], check=False, capture_output=True, text=True,
                          timeout=TIMEOUT, env=env, cwd=PACKAGE_PARENT)
    assert done.returncode == 0, done.stderr[-2000:]
    growth, checksum = json.loads(done.stdout.strip().splitlines()[-1])
    assert checksum == pytest.approx(float(np.abs(model.get_weights()[1]).sum()))
    assert growth < 1.5 * size + 8 * 2**20, (growth, size)


# --------------------------------------------------------------------------- temp litter


def _dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _touch(path, age_s):
    with open(path, "wb") as f:
        f.write(b"partial")
    stamp = time.time() - age_s
    os.utime(path, (stamp, stamp))


def test_next_save_removes_stale_temp_files_only(tmp_path):
    model = crnn.Sequential([L.Dense(2, input_shape=(3,))])
    target = tmp_path / "m.crnn"
    dead, alive = _dead_pid(), os.getpid()
    removed = [f".m.crnn.pid{dead}.abcd1234.tmp",          # its process is gone
               f".m.crnn.pid{alive}.old_0000.tmp",          # not written for two hours
               ".m.crnn.x9y8z7w6.tmp"]                       # older naming, two hours old
    kept = [(f".m.crnn.pid{dead}.fresh000.tmp", 5),         # gone, but written 5 s ago
            (f".m.crnn.pid{alive}.live0000.tmp", 120),      # a save in progress here
            (".m.crnn.recent00.tmp", 600),                   # older naming, 10 minutes
            (f".other.crnn.pid{dead}.abcd1234.tmp", 7200),  # another target's
            (f".m.crnn.pid{dead}.toolong00.tmp", 7200),     # not mkstemp's 8 characters
            ("m.crnn.tmp", 7200), (".m.crnn.tmp", 7200)]    # not crnn's naming
    ages = {removed[0]: 120, removed[1]: 7200, removed[2]: 7200}
    for name in removed:
        _touch(tmp_path / name, ages[name])
    for name, age in kept:
        _touch(tmp_path / name, age)
    model.save(target)
    left = set(os.listdir(tmp_path))
    assert not left & set(removed)
    assert {name for name, _ in kept} <= left
    crnn.load_model(target)


def test_temp_file_of_a_save_killed_mid_write_is_removed_by_the_next_save(tmp_path):
    if not hasattr(signal, "SIGKILL"):
        pytest.skip("needs kill -9")
    target = tmp_path / "m.crnn"
    child = textwrap.dedent(f"""
        import os, time
        import crnn
        model = crnn.Sequential([crnn.layers.Dense(2, input_shape=(3,))])
        os.replace = lambda *args: time.sleep(3600)     # killed before the rename
        model.save({str(target)!r})
    """)
    env = dict(os.environ, PYTHONPATH=PACKAGE_PARENT, OPENBLAS_NUM_THREADS="1")
    process = subprocess.Popen([sys.executable, "-c", child], env=env, cwd=PACKAGE_PARENT)
    try:
        deadline = time.monotonic() + 60
        while not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]:
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.2)      # let the write finish; the child now waits in os.replace
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    litter = [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
    assert litter == [n for n in litter if f".pid{process.pid}." in n] and litter
    for name in litter:
        stamp = time.time() - 120
        os.utime(tmp_path / name, (stamp, stamp))
    crnn.Sequential([L.Dense(2, input_shape=(3,))]).save(target)
    assert os.listdir(tmp_path) == ["m.crnn"]


def test_stale_temp_cleanup_never_raises(tmp_path, monkeypatch):
    name = f".m.crnn.pid{_dead_pid()}.abcd1234.tmp"
    _touch(tmp_path / name, 7200)

    def refuse(path):
        raise PermissionError("read-only")

    monkeypatch.setattr(os, "remove", refuse)
    saving._remove_stale_temps(str(tmp_path), "m.crnn")
    assert name in os.listdir(tmp_path)


# --------------------------------------------------------------------------- fuzzing

# Small values only: a mutation must not be able to make a regression allocate much here,
# in the test process (the huge ones are the bounded child's job above).
_JUNK = [None, -1, 0, 1, 2.5, "x", "", [], {}, [1], {"a": 1}, True, float("nan"), [[[]]],
         "float16", "complex64", "Dense", {"class_name": "Dense", "config": {}}]


@pytest.fixture(scope="module")
def fuzz_sources(tmp_path_factory):
    directory = tmp_path_factory.mktemp("fuzz")
    crnn.utils.set_random_seed(0)
    text = crnn.Sequential([L.Embedding(10, 3, input_length=5, mask_zero=True),
                            L.GRU(4, return_sequences=True), L.Bidirectional(L.LSTM(3)),
                            L.Dense(2)])
    text.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    text.fit(np.ones((2, 5)), np.ones((2,)), verbose=0)
    text.save(directory / "text.crnn")
    stateful = crnn.Sequential([L.GRU(4, stateful=True, return_sequences=True,
                                      batch_input_shape=(2, 5, 3)),
                                L.TimeDistributed(L.Dense(2))])
    stateful.compile("sgd", "mse")
    stateful.save(directory / "stateful.crnn")
    return directory, [_members(directory / "text.crnn"), _members(directory / "stateful.crnn")]


def _paths(value, prefix=()):
    if prefix:
        yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, prefix + (index,))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_headers_load_or_raise_value_error(fuzz_sources, data):
    directory, sources = fuzz_sources
    members = dict(data.draw(st.sampled_from(sources)))
    header = _header(members)
    for _ in range(data.draw(st.integers(1, 2))):
        path = data.draw(st.sampled_from(list(_paths(header))))
        parent = header
        for key in path[:-1]:
            parent = parent[key]
        if isinstance(parent, dict) and data.draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = copy.deepcopy(data.draw(st.sampled_from(_JUNK)))
        if not isinstance(header, dict):
            break
    members["crnn_header"] = _npy(np.frombuffer(json.dumps(header).encode(), np.uint8))
    path = _write(directory / "mutated.crnn", members)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            crnn.load_model(path)
        except ValueError as error:
            assert type(error) is ValueError


@pytest.mark.parametrize("version", [109, 255])
def test_a_damaged_zip_version_field_raises_value_error(fuzz_sources, version):
    # found by the fuzz test below: zipfile refuses a "version needed to extract" it does
    # not know with NotImplementedError, which the Keras-file sniffing let through
    directory, _ = fuzz_sources
    raw = bytearray((directory / "stateful.crnn").read_bytes())
    at = raw.find(b"PK\x01\x02")          # each central directory entry
    assert at != -1
    while at != -1:
        raw[at + 6] = version
        at = raw.find(b"PK\x01\x02", at + 4)
    path = directory / f"version{version}.crnn"
    path.write_bytes(bytes(raw))
    from crnn.interop import keras as keras_files

    assert keras_files.is_keras_file(path) is False
    with pytest.raises(ValueError) as info:
        crnn.load_model(path)
    assert type(info.value) is ValueError


def test_a_keras_archive_with_a_damaged_version_field_raises_value_error(tmp_path):
    from crnn.interop import keras as keras_files

    raw = bytearray((Path(__file__).parent / "interop_golden" / "stack.keras").read_bytes())
    at = raw.find(b"PK\x01\x02")
    while at != -1:
        raw[at + 6] = 109
        at = raw.find(b"PK\x01\x02", at + 4)
    path = tmp_path / "damaged.keras"
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="neither a Keras 3 .keras archive") as info:
        keras_files.load_model(path)
    assert type(info.value) is ValueError


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_damaged_bytes_load_or_raise_value_error(fuzz_sources, data):
    directory, _ = fuzz_sources
    with open(directory / "stateful.crnn", "rb") as f:
        raw = bytearray(f.read())
    how = data.draw(st.sampled_from(["flip", "truncate", "insert", "zero"]))
    at = data.draw(st.integers(0, len(raw) - 1))
    if how == "flip":
        raw[at] ^= data.draw(st.integers(1, 255))
    elif how == "truncate":
        raw = raw[:at]
    elif how == "insert":
        raw[at:at] = data.draw(st.binary(min_size=1, max_size=16))
    else:
        raw[at:at + data.draw(st.integers(1, 64))] = bytes(64)
    path = directory / "damaged.crnn"
    with open(path, "wb") as f:
        f.write(bytes(raw))
    try:
        crnn.load_model(path)
    except ValueError as error:
        assert type(error) is ValueError
