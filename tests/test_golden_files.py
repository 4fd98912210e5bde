"""Every golden data file follows the scheme in CONTRIBUTING.md ("Golden data").

Folders: ``tests/golden/`` (the core maths) and ``tests/<area>_golden/``. In each, every
script is a generator ``make_<name>.py`` that writes ``<name>.npz`` (or ``<name>.json``)
beside itself, and every ``.npz`` has its ``make_<name>.py``. Every data file records, under
``"__meta__"`` (a top-level key in a JSON file), the full metadata that
``tests/golden_meta.py`` writes: its ``generator``, the ``make_`` script beside it, and the
``versions`` of Python, NumPy and the independent libraries that produced it (with
``keras_backend`` and the backend's version wherever Keras is recorded).

The checks are plain functions returning a list of problems, so that the tests at the end
can show on doctored copies in a temporary folder that each rule does fail.
"""

import glob
import json
import os
import shutil

import numpy as np
import pytest

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)
FOLDERS = sorted([os.path.join(TESTS, "golden")] + glob.glob(os.path.join(TESTS, "*_golden")))
NPZ = sorted(p for folder in FOLDERS for p in glob.glob(os.path.join(folder, "*.npz")))
JSON = sorted(p for folder in FOLDERS for p in glob.glob(os.path.join(folder, "*.json")))
MAX_BYTES = 2 * 1024 * 1024     # golden data stays small
# What a golden folder may hold besides its generators and data: Keras model files that the
# Keras-file tests read, and a README.
OTHER_FILES = (".keras", ".h5")
README = "README.md"


def _rel(path, root=ROOT):
    return os.path.relpath(path, root).replace(os.sep, "/")


def _expected_generators(path):
    """The scripts allowed to have written data file ``path``."""
    folder = os.path.dirname(path)
    if path.endswith(".npz"):
        stem = os.path.splitext(os.path.basename(path))[0]
        return [os.path.join(folder, f"make_{stem}.py")]
    return sorted(glob.glob(os.path.join(folder, "make_*.py")))


def meta_problems(path, meta, root=ROOT):
    """What the ``__meta__`` object of data file ``path`` lacks ([] when it is complete)."""
    name = _rel(path, root)
    if not isinstance(meta, dict):
        return [f"{name}: __meta__ must be a JSON object, got {type(meta).__name__}"]
    problems = []
    versions = meta.get("versions")
    if not isinstance(versions, dict):
        problems.append(f"{name}: __meta__ has no 'versions' object")
    else:
        if not all(isinstance(v, str) and v for v in versions.values()):
            problems.append(f"{name}: every recorded version must be a non-empty string")
        missing = {"python", "numpy"} - set(versions)
        if missing:
            problems.append(f"{name}: versions lack {sorted(missing)}")
        if not set(versions) - {"python", "numpy", "keras_backend"}:
            problems.append(f"{name}: versions name no independent library (keras, torch...)")
        if "keras" in versions:
            backend = versions.get("keras_backend")
            if not backend:
                problems.append(f"{name}: versions record keras without 'keras_backend'")
            elif backend not in versions:
                problems.append(f"{name}: versions lack the Keras backend {backend!r}")
    generator = meta.get("generator")
    expected = _expected_generators(path)
    if not isinstance(generator, str):
        problems.append(f"{name}: __meta__ has no 'generator' (use tests/golden_meta.py)")
    elif os.path.normpath(os.path.join(root, generator)) not in expected:
        problems.append(f"{name}: generator {generator!r} is not the make_ script beside it "
                        f"({', '.join(_rel(p, root) for p in expected) or 'none there'})")
    elif not os.path.isfile(os.path.join(root, generator)):
        problems.append(f"{name}: generator {generator!r} does not exist")
    elif path.endswith(".json"):
        with open(os.path.join(root, generator), encoding="utf-8") as f:
            if os.path.basename(path) not in f.read():
                problems.append(f"{name}: generator {generator!r} does not write it")
    return problems


def file_problems(path, root=ROOT):
    """Everything wrong with golden data file ``path`` (.npz or .json); [] when none."""
    name = _rel(path, root)
    problems = []
    if os.path.getsize(path) > MAX_BYTES:
        problems.append(f"{name}: over {MAX_BYTES} bytes")
    if path.endswith(".npz"):
        generator = _expected_generators(path)[0]
        if not os.path.isfile(generator):
            problems.append(f"{name} needs its generator {_rel(generator, root)}")
        with np.load(path, allow_pickle=False) as data:
            if "__meta__" not in data.files:
                return problems + [f"{name} has no '__meta__' entry"]
            text = str(data["__meta__"])
        try:
            meta = json.loads(text)
        except json.JSONDecodeError as e:
            return problems + [f"{name}: __meta__ is not JSON ({e})"]
    else:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        if not isinstance(data, dict) or "__meta__" not in data:
            return problems + [f"{name} has no top-level '__meta__' key"]
        meta = data["__meta__"]
    return problems + meta_problems(path, meta, root)


def folder_problems(folder, root=ROOT):
    """Names in a golden folder that break the scheme; [] when none."""
    name = _rel(folder, root)
    entries = sorted(e for e in os.listdir(folder) if e != "__pycache__")
    scripts = [e for e in entries if e.endswith(".py")]
    problems = []
    if not scripts:
        problems.append(f"{name}: no generator script")
    for script in scripts:
        if not script.startswith("make_"):
            problems.append(f"{name}/{script}: a golden folder holds only make_<name>.py "
                            "generators")
            continue
        stem = script[len("make_"):-len(".py")]
        if f"{stem}.npz" not in entries and f"{stem}.json" not in entries:
            problems.append(f"{name}/{script}: writes neither {stem}.npz nor {stem}.json "
                            "beside itself")
    for entry in entries:
        if entry == README or entry.endswith((".py", ".npz", ".json") + OTHER_FILES):
            continue
        problems.append(f"{name}/{entry}: not a generator, data file, Keras model file or "
                        "README")
    return problems


def test_golden_folders_hold_data():
    assert len(FOLDERS) >= 6 and len(NPZ) >= 6


@pytest.mark.parametrize("folder", FOLDERS, ids=_rel)
def test_folder_follows_the_naming_scheme(folder):
    assert folder_problems(folder) == []


@pytest.mark.parametrize("path", NPZ + JSON, ids=_rel)
def test_data_file_has_generator_and_full_metadata(path):
    assert file_problems(path) == []


# --------------------------------------------------------------------------- the checks fail


@pytest.fixture
def copy(tmp_path):
    """A copy of tests/qa_golden and tests/keras_users_golden's callbacks under tmp_path."""
    qa = tmp_path / "tests" / "qa_golden"
    shutil.copytree(os.path.join(TESTS, "qa_golden"), qa)
    users = tmp_path / "tests" / "keras_users_golden"
    users.mkdir()
    for entry in ("make_callbacks.py", "callbacks.json"):
        shutil.copy(os.path.join(TESTS, "keras_users_golden", entry), users / entry)
    return tmp_path


def _rewrite_npz(path, change):
    with np.load(path, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    meta = json.loads(str(arrays.pop("__meta__")))
    meta = change(meta)
    if meta is not None:
        arrays["__meta__"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)


def _drop(key):
    def change(meta):
        del meta[key]
        return meta
    return change


def _set(key, value):
    def change(meta):
        meta[key] = value
        return meta
    return change


def _drop_version(library):
    def change(meta):
        del meta["versions"][library]
        return meta
    return change


def _only_python_numpy(meta):
    meta["versions"] = {k: meta["versions"][k] for k in ("python", "numpy")}
    return meta


def test_copies_pass_unchanged(copy):
    for path in (copy / "tests" / "qa_golden" / "irnn_golden.npz",
                 copy / "tests" / "keras_users_golden" / "callbacks.json"):
        assert file_problems(str(path), str(copy)) == []
    for folder in ("qa_golden", "keras_users_golden"):
        assert folder_problems(str(copy / "tests" / folder), str(copy)) == []


@pytest.mark.parametrize("change, message", [
    (lambda meta: None, "has no '__meta__' entry"),
    (_drop("generator"), "has no 'generator'"),
    (_set("generator", "tests/qa_golden/make_keras_resume.py"), "not the make_ script"),
    (_set("generator", "tests/golden/make_irnn_golden.py"), "not the make_ script"),
    (_drop("versions"), "no 'versions' object"),
    (_drop_version("numpy"), "versions lack ['numpy']"),
    (_drop_version("keras_backend"), "without 'keras_backend'"),
    (_drop_version("tensorflow"), "lack the Keras backend 'tensorflow'"),
    (_only_python_numpy, "name no independent library"),
    (lambda meta: ["not", "an", "object"], "must be a JSON object"),
], ids=["no meta", "no generator", "other script", "other folder", "no versions",
        "no numpy", "no keras_backend", "no backend version", "no library", "not object"])
def test_npz_check_fails_on_incomplete_meta(copy, change, message):
    path = str(copy / "tests" / "qa_golden" / "irnn_golden.npz")
    _rewrite_npz(path, change)
    problems = file_problems(path, str(copy))
    assert len(problems) == 1 and message in problems[0], problems


def test_npz_check_fails_without_its_generator(copy):
    os.remove(copy / "tests" / "qa_golden" / "make_irnn_golden.py")
    path = str(copy / "tests" / "qa_golden" / "irnn_golden.npz")
    problems = file_problems(path, str(copy))
    assert any("needs its generator" in p for p in problems), problems


@pytest.mark.parametrize("change, message", [
    (_drop("__meta__"), "no top-level '__meta__' key"),
    (lambda data: {**data, "__meta__": {**data["__meta__"],
                                        "generator": "tests/qa_golden/make_irnn_golden.py"}},
     "not the make_ script"),
])
def test_json_check_fails_on_incomplete_meta(copy, change, message):
    path = copy / "tests" / "keras_users_golden" / "callbacks.json"
    path.write_text(json.dumps(change(json.loads(path.read_text()))))
    problems = file_problems(str(path), str(copy))
    assert len(problems) == 1 and message in problems[0], problems


def test_json_check_fails_when_its_generator_does_not_write_it(copy):
    folder = copy / "tests" / "keras_users_golden"
    os.rename(folder / "callbacks.json", folder / "schedules.json")
    problems = file_problems(str(folder / "schedules.json"), str(copy))
    assert len(problems) == 1 and "does not write it" in problems[0], problems


@pytest.mark.parametrize("entry, message", [
    ("helpers.py", "holds only make_<name>.py"),
    ("make_other.py", "writes neither other.npz nor other.json"),
    ("notes.txt", "not a generator, data file"),
])
def test_folder_check_fails_on_a_stray_name(copy, entry, message):
    folder = copy / "tests" / "qa_golden"
    (folder / entry).write_text("")
    problems = folder_problems(str(folder), str(copy))
    assert len(problems) == 1 and message in problems[0], problems
