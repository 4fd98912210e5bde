"""crnn._registry: the serialized forms and look-ups behind get/serialize/deserialize."""

import re

import pytest

from crnn import constraints, losses, optimizers, regularizers
from crnn._registry import (
    KerasFamily,
    class_config,
    config_repr,
    from_class_config,
    keras_config,
)


class _Thing:
    def __init__(self, size=1, name="thing"):
        self.size = size
        self.name = name

    def get_config(self):
        return {"size": self.size, "name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class _Other(_Thing):
    pass


def test_serialized_forms_and_repr():
    thing = _Thing(3)
    assert class_config(thing) == {"class_name": "_Thing", "config": {"size": 3, "name": "thing"}}
    assert keras_config(thing, "keras.things") == {
        "module": "keras.things", "class_name": "_Thing",
        "config": {"size": 3, "name": "thing"}, "registered_name": None}
    assert config_repr(thing) == "_Thing(size=3, name='thing')"
    assert config_repr(thing, skip="name") == "_Thing(size=3)"


def test_from_class_config_finds_checks_and_builds():
    classes = {"_Thing": _Thing}
    made = from_class_config({"class_name": "_Thing", "config": {"size": 2}}, "thing", classes)
    assert type(made) is _Thing and made.size == 2
    assert from_class_config({"class_name": "_Thing"}, "thing", classes).size == 1
    other = from_class_config({"class_name": "other"}, "thing", classes,
                              lambda name: {"other": _Other}.get(name))
    assert type(other) is _Other
    for bad in ([], {"config": {}}):
        with pytest.raises(ValueError, match=re.escape(
                "Expected a dict with keys 'class_name' and 'config'. Received: ")):
            from_class_config(bad, "thing", classes)
    with pytest.raises(ValueError, match=re.escape(
            "Unknown thing class_name='Nope'. Known: ['_Thing'].")):
        from_class_config({"class_name": "Nope"}, "thing", classes)


def test_keras_family_get_serialize_deserialize():
    family = KerasFamily("thing", "keras.things", _Thing, {"_Thing": _Thing},
                         {"thing": _Thing, "big": lambda: _Thing(9)})
    thing = _Thing()
    assert family.get(None) is None and family.get(thing) is thing
    assert family.get("BIG").size == 9
    assert family.serialize(None) is None
    assert family.deserialize(family.serialize(_Thing(4))).size == 4
    assert family.get(family.serialize(_Thing(5))).size == 5
    with pytest.raises(ValueError, match=re.escape(
            "Unknown thing 'huge'; known names: ['big', 'thing'].")):
        family.get("huge")
    with pytest.raises(ValueError, match=re.escape("Could not interpret thing identifier: 3.")):
        family.get(3)
    with pytest.raises(ValueError, match=re.escape("Unknown thing None; known: ['_Thing'].")):
        family.deserialize("x")


def test_the_families_keep_their_messages():
    with pytest.raises(ValueError, match=re.escape("Unknown constraint 'positive'; known names: ")):
        constraints.get("positive")
    assert repr(constraints.get("MaxNorm")) == "MaxNorm(max_value=2.0, axis=0)"
    with pytest.raises(ValueError, match=re.escape("Unknown regularizer 'L3'; known: ")):
        regularizers.deserialize({"class_name": "L3"})
    with pytest.raises(ValueError, match=re.escape("Unknown loss class_name='nope'. Known: ")):
        losses.deserialize({"class_name": "nope"})
    assert type(optimizers.deserialize({"class_name": "ADAM"})).__name__ == "Adam"
    assert repr(optimizers.SGD()).startswith("SGD(learning_rate=0.01, ")
