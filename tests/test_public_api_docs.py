"""Every public function and class is documented in the house style and type-hinted.

The public API is what each public module lists in ``__all__`` (modules under ``crnn`` whose
names do not start with an underscore), checked in the module that defines it. House style
(Keras's Google-style docstrings):

- functions and classes: a docstring with an ``Args:`` section naming every parameter (a
  class documents its constructor's), ``Returns:`` (or ``Yields:``) when something is
  returned, and an ``Example:`` section;
- public methods and properties: a docstring (their own or the one they override), with
  ``Args:`` naming every parameter and ``Returns:`` when something is returned;
- type hints on every parameter and on the return value of functions, constructors and
  public methods.

These checks read signatures and docstrings only, so they hold for every platform and build.
"""

import importlib
import inspect
import pkgutil
import re

import pytest

import crnn

MODULES = sorted(
    name for _, name, _ in pkgutil.walk_packages(crnn.__path__, "crnn.")
    if not any(part.startswith("_") for part in name.split(".")[1:])
)
SKIP_PARAMS = {"self", "cls"}


def _public_objects():
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name, None)  # a submodule named in __all__ is not an attribute
            if (inspect.isclass(obj) or inspect.isfunction(obj)) \
                    and obj.__module__ == module_name:
                yield f"{module_name}.{name}", obj


OBJECTS = dict(_public_objects())


def _named_params(func):
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return None, []
    return sig, [p for p in sig.parameters.values() if p.name not in SKIP_PARAMS]


def _section(doc, title):
    """The text of a Google-style section (``Args:``), up to the next section."""
    match = re.search(rf"^\s*{title}:\s*$(.*?)(?=^\s*[A-Z][A-Za-z ]+:\s*$|\Z)", doc, re.M | re.S)
    return match.group(1) if match else None


def _returns_value(sig):
    ann = sig.return_annotation
    return ann is not inspect.Signature.empty and ann not in (None, "None", "NoReturn")


def _doc_problems(doc, sig, params, need_example):
    problems = []
    if not doc or not doc.strip():
        return ["no docstring"]
    names = [p.name for p in params]
    if names:
        args = _section(doc, "Args") or _section(doc, "Arguments")
        if args is None:
            problems.append(f"no Args: section (parameters: {', '.join(names)})")
        else:
            missing = [n for n in names if not re.search(rf"^\s*\**{re.escape(n)}\b", args, re.M)]
            if missing:
                problems.append(f"Args: does not name {', '.join(missing)}")
    if sig is not None and _returns_value(sig) \
            and not (_section(doc, "Returns") or _section(doc, "Yields")):
        problems.append("returns a value but has no Returns: section")
    if need_example and not re.search(r"^\s*Examples?:\s*$", doc, re.M):
        problems.append("no Example: section")
    return problems


def _hint_problems(sig, params, what):
    if sig is None:
        return []
    problems = [f"{what}: parameter {p.name!r} has no type hint" for p in params
                if p.annotation is inspect.Parameter.empty]
    if sig.return_annotation is inspect.Signature.empty and what != "__init__":
        problems.append(f"{what}: no return type hint")
    return problems


def _public_methods(cls):
    for name, member in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(member, property):
            yield name, member, "property"
        elif isinstance(member, (staticmethod, classmethod)):
            yield name, member.__func__, "method"
        elif inspect.isfunction(member):
            yield name, member, "method"


def test_the_public_api_is_found():
    for name in ("crnn.models.Sequential", "crnn.layers.recurrent.LSTM", "crnn.ops.lstm",
                 "crnn.saving.load_model", "crnn.streaming.StreamPool", "crnn.callbacks.Callback"):
        assert name in OBJECTS
    assert len(OBJECTS) > 150


def test_the_checker_finds_what_is_missing():
    def undocumented(a, b):
        pass

    def documented(a: int, b: int = 2) -> int:
        """Add.

        Args:
            a: first.
            b: second.

        Returns:
            The sum.

        Example:
            >>> documented(1)
            3
        """
        return a + b

    sig, params = _named_params(undocumented)
    assert _doc_problems(inspect.getdoc(undocumented), sig, params, True) == ["no docstring"]
    assert len(_hint_problems(sig, params, "f")) == 3
    sig, params = _named_params(documented)
    assert _doc_problems(inspect.getdoc(documented), sig, params, True) == []
    assert _hint_problems(sig, params, "f") == []
    doc = "Add.\n\nArgs:\n    a: first.\n"
    assert _doc_problems(doc, sig, params, True) == [
        "Args: does not name b", "returns a value but has no Returns: section",
        "no Example: section"]


@pytest.mark.parametrize("qualname", sorted(OBJECTS))
def test_public_object_is_documented_and_hinted(qualname):
    obj = OBJECTS[qualname]
    problems = []
    if inspect.isfunction(obj):
        sig, params = _named_params(obj)
        problems += _doc_problems(inspect.getdoc(obj), sig, params, need_example=True)
        problems += _hint_problems(sig, params, "signature")
    else:
        init = obj.__dict__.get("__init__")
        sig, params = _named_params(init) if init is not None else (None, [])
        problems += _doc_problems(inspect.getdoc(obj), None, params, need_example=True)
        problems += _hint_problems(sig, params, "__init__")
        for name, member, kind in _public_methods(obj):
            doc = inspect.getdoc(getattr(obj, name)) if kind == "method" else member.__doc__
            if kind == "property":
                if not doc:
                    problems.append(f"property {name}: no docstring")
                continue
            msig, mparams = _named_params(member)
            problems += [f"{name}: {p}" for p in _doc_problems(doc, msig, mparams, False)]
            problems += _hint_problems(msig, mparams, name)
    assert not problems, f"{qualname}:\n  " + "\n  ".join(problems)
