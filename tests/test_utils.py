"""Tests for crnn.utils: seeding and the Keras-style progress bar."""

import doctest
import random
import re

import numpy as np
import pytest

import crnn.utils as utils
from crnn.utils import progbar


def strip_ansi(text):
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


# ----------------------------------------------------------------------- seeding
def test_set_random_seed_makes_every_generator_repeat():
    utils.set_random_seed(123)
    first = (utils.get_rng().normal(size=3), np.random.rand(2), random.random(),
             utils.make_rng().integers(1000, size=3))
    utils.set_random_seed(123)
    second = (utils.get_rng().normal(size=3), np.random.rand(2), random.random(),
              utils.make_rng().integers(1000, size=3))
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert first[2] == second[2]
    np.testing.assert_array_equal(first[3], second[3])
    utils.set_random_seed(124)
    assert not np.array_equal(utils.get_rng().normal(size=3), first[0])


def test_make_rng_with_seed_is_independent_of_the_global_generator():
    a = utils.make_rng(7).normal(size=4)
    utils.set_random_seed(1)
    b = utils.make_rng(7).normal(size=4)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, np.random.default_rng(7).normal(size=4))


def test_make_rng_children_differ_from_each_other():
    utils.set_random_seed(5)
    x = utils.make_rng().normal(size=4)
    y = utils.make_rng().normal(size=4)
    assert not np.array_equal(x, y)


def test_large_seeds_work():
    utils.set_random_seed(2**40 + 3)  # beyond np.random.seed's 32-bit range
    assert isinstance(utils.get_rng(), np.random.Generator)


@pytest.mark.parametrize("bad", [-1, 1.5, "3", None, True])
def test_bad_seed_is_rejected(bad):
    with pytest.raises(ValueError, match="`seed`.*Received: seed="):
        utils.set_random_seed(bad)
    if bad is not None:
        with pytest.raises(ValueError, match="`seed`"):
            utils.make_rng(bad)


# ----------------------------------------------------------------------- Progbar
def dynamic_bar(**kwargs):
    bar = utils.Progbar(interval=0.0, **kwargs)
    bar._dynamic_display = True  # as on a terminal, but without colours
    return bar


def test_running_bar_shows_count_eta_time_per_step_and_running_means(capsys):
    bar = dynamic_bar(target=50)
    bar.update(10, [("loss", 1.0), ("mae", 0.5)])
    bar.update(12, [("loss", 0.25), ("mae", 0.5)])
    out = capsys.readouterr().out
    frames = [f for f in out.split("\r") if f]
    assert len(frames) == 2
    # The running mean weights each update by the steps it covers: (1*10 + 0.25*2) / 12.
    assert re.fullmatch(
        r"12/50 ━{4}─{16} \d+s \d+[mu]?s/step - loss: 0\.8750 - mae: 0\.5000\s*", frames[1]
    ), frames[1]
    assert re.match(r"10/50 ━━━━─", frames[0])
    assert "\n" not in out  # not finished yet


def test_final_bar_shows_total_time_and_ends_the_line(capsys):
    bar = dynamic_bar(target=4)
    for step in range(1, 5):
        bar.update(step, [("loss", 0.5)])
    out = capsys.readouterr().out
    assert out.endswith("\n")
    last = out.split("\r")[-1]
    assert re.fullmatch(r"4/4 ━{20} \d+s \d+[mu]?s/step - loss: 0\.5000\n", last)


def test_shorter_line_blanks_out_the_previous_one(capsys):
    bar = dynamic_bar(target=10)
    bar.update(1, [("loss", 123456.0)])
    bar.update(2, [("loss", 1.0)])
    first, second = [f for f in capsys.readouterr().out.split("\r") if f]
    assert len(second) >= len(first)


def test_stateful_metrics_are_shown_as_given(capsys):
    bar = dynamic_bar(target=3, stateful_metrics=["acc"])
    bar.update(1, [("acc", 0.1), ("loss", 3.0)])
    bar.update(2, [("acc", 0.9), ("loss", 1.0)])
    last = capsys.readouterr().out.split("\r")[-1]
    assert "acc: 0.9000" in last and "loss: 2.0000" in last


def test_small_values_use_scientific_notation(capsys):
    bar = utils.Progbar(target=1, verbose=2)
    bar.update(1, {"loss": 0.0001234})
    assert "loss: 1.2340e-04" in capsys.readouterr().out


def test_verbose_2_prints_one_line_at_the_end(capsys):
    bar = utils.Progbar(target=5, verbose=2)
    for step in range(1, 5):
        bar.update(step, [("loss", 1.0)])
    assert capsys.readouterr().out == ""
    bar.update(5, [("loss", 0.5)])
    out = capsys.readouterr().out
    assert re.fullmatch(r"5/5 - \d+s - \d+[mu]?s/step - loss: 0\.5000\n", out)


def test_verbose_0_prints_nothing(capsys):
    bar = utils.Progbar(target=3, verbose=0)
    for step in range(1, 4):
        bar.update(step, [("loss", 1.0)])
    assert capsys.readouterr().out == ""


def test_non_terminal_output_gets_only_the_final_line(capsys):
    bar = utils.Progbar(target=3, interval=0.0)  # pytest's captured stdout is not a tty
    for step in range(1, 4):
        bar.update(step, [("loss", 1.0)])
    out = capsys.readouterr().out
    assert "\r" not in out and "\x1b" not in out
    assert re.fullmatch(r"3/3 ━{20} \d+s \d+[mu]?s/step - loss: 1\.0000\n", out)


def test_colour_codes_on_a_terminal(capsys):
    bar = dynamic_bar(target=2)
    bar._use_color = True
    bar.update(1)
    bar.update(2)
    out = capsys.readouterr().out
    assert "\x1b[32m" in out  # the done part of the bar is green, as in Keras
    assert re.search(r"2/2 ━{20} \d+s", strip_ansi(out))


def test_unknown_target(capsys):
    bar = dynamic_bar(target=None)
    bar.update(7, [("loss", 1.0)])
    assert re.match(r"\r      7/Unknown \d+s \d+[mu]?s/step - loss: 1\.0000", capsys.readouterr().out)


def test_eta_formatting():
    assert progbar._format_eta(5.4) == "5s"
    assert progbar._format_eta(75) == "1:15"
    assert progbar._format_eta(3725) == "1:02:05"
    assert progbar._format_time_per_unit(2.2, "step") == "2s/step"
    assert progbar._format_time_per_unit(0.0204, "step") == "20ms/step"
    assert progbar._format_time_per_unit(0.0000204, "sample") == "20us/sample"


def test_time_per_step_leaves_out_the_first_step():
    bar = utils.Progbar(target=10, verbose=0)
    bar._start = 0.0
    assert bar._estimate_step_duration(1, now=5.0) == 5.0  # slow first step
    assert bar._estimate_step_duration(3, now=5.2) == pytest.approx(0.1)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"target": -1}, "`target`"),
        ({"target": 3, "verbose": 3}, "`verbose`"),
        ({"target": 3, "width": 0}, "`width`"),
        ({"target": 3, "stateful_metrics": ["a"], "stateless_metrics": ["b"]}, "Only one of"),
    ],
)
def test_progbar_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        utils.Progbar(**kwargs)


def test_docstring_examples():
    result = doctest.testmod(utils)
    assert result.attempted > 0 and result.failed == 0
