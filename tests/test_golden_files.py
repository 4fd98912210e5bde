"""Every golden data file follows the scheme in CONTRIBUTING.md ("Golden data").

Folders: ``tests/golden/`` (the core maths) and ``tests/<area>_golden/``. In each, the data
file ``<name>.npz`` is written by ``make_<name>.py`` beside it and records, under
``"__meta__"``, the versions of Python, NumPy and the independent libraries that produced
it; a JSON data file carries the same under a top-level ``"__meta__"`` key.
"""

import glob
import json
import os

import numpy as np
import pytest

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)
FOLDERS = sorted([os.path.join(TESTS, "golden")] + glob.glob(os.path.join(TESTS, "*_golden")))
NPZ = sorted(p for folder in FOLDERS for p in glob.glob(os.path.join(folder, "*.npz")))
JSON = sorted(p for folder in FOLDERS for p in glob.glob(os.path.join(folder, "*.json")))
MAX_BYTES = 2 * 1024 * 1024     # golden data stays small


def _rel(path):
    return os.path.relpath(path, ROOT)


def _check_meta(path, meta):
    assert isinstance(meta, dict), f"{_rel(path)}: __meta__ must be a JSON object"
    versions = meta.get("versions")
    assert isinstance(versions, dict), f"{_rel(path)}: __meta__ has no 'versions' object"
    assert {"python", "numpy"} <= set(versions), f"{_rel(path)}: versions lack python/numpy"
    others = set(versions) - {"python", "numpy", "keras_backend"}
    assert others, f"{_rel(path)}: versions name no independent library (keras, torch...)"
    if "generator" in meta:
        assert os.path.isfile(os.path.join(ROOT, meta["generator"])), \
            f"{_rel(path)}: generator {meta['generator']!r} does not exist"


def test_golden_folders_hold_data():
    assert len(NPZ) >= 6


@pytest.mark.parametrize("path", NPZ, ids=_rel)
def test_npz_records_versions_and_has_its_generator(path):
    stem = os.path.splitext(os.path.basename(path))[0]
    generator = os.path.join(os.path.dirname(path), f"make_{stem}.py")
    assert os.path.isfile(generator), f"{_rel(path)} needs its generator {_rel(generator)}"
    assert os.path.getsize(path) <= MAX_BYTES
    with np.load(path, allow_pickle=False) as data:
        assert "__meta__" in data.files, f"{_rel(path)} has no '__meta__' entry"
        _check_meta(path, json.loads(str(data["__meta__"])))


@pytest.mark.parametrize("path", JSON, ids=_rel)
def test_json_records_versions(path):
    assert os.path.getsize(path) <= MAX_BYTES
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    _check_meta(path, data.get("__meta__") if isinstance(data, dict) else None)


@pytest.mark.parametrize("folder", FOLDERS, ids=_rel)
def test_generator_scripts_are_named_make(folder):
    scripts = [os.path.basename(p) for p in glob.glob(os.path.join(folder, "*.py"))]
    assert scripts and all(s.startswith("make_") for s in scripts), scripts
