"""``Progbar``: the Keras-style progress bar of ``fit``, ``evaluate`` and ``predict``.

Re-exported by ``crnn.utils`` (``crnn.utils.Progbar``, where Keras users look for it).
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from crnn._validation import is_int

__all__ = ["Progbar"]


def _format_number(value):
    # Keras's progbar switches to scientific notation for small magnitudes.
    if abs(value) > 1e-3:
        return f"{value:.4f}"
    return f"{value:.4e}"


def _format_time_per_unit(seconds, unit_name):
    if seconds >= 1 or seconds == 0:
        return f"{seconds:.0f}s/{unit_name}"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/{unit_name}"
    return f"{seconds * 1e6:.0f}us/{unit_name}"


def _format_eta(seconds):
    if seconds > 3600:
        return "%d:%02d:%02d" % (seconds // 3600, (seconds % 3600) // 60, seconds % 60)
    if seconds > 60:
        return "%d:%02d" % (seconds // 60, seconds % 60)
    return "%ds" % seconds


class Progbar:
    """Keras-style progress bar.

    With ``verbose=1`` it redraws one line while running (step count, bar, ETA,
    time per step and running values), then ends with the total time::

        12/50 ━━━━━━━━━━━━━━━━━━━━ 1s 20ms/step - loss: 0.1234 - mae: 0.2000

    With ``verbose=2`` it prints one line when the target is reached::

        50/50 - 1s - 20ms/step - loss: 0.1234 - mae: 0.2000

    ``verbose=0`` prints nothing. When standard output is not a terminal, the
    ``verbose=1`` bar prints only its final line, so logs stay readable.

    Args:
        target: Total number of steps expected, or ``None`` if unknown.
        width: Width of the bar in characters. Defaults to 20 (Keras's value).
        verbose: 0 (silent), 1 (bar) or 2 (one line at the end). Defaults to 1.
        stateful_metrics: Names of values shown as given. Other values are
            averaged over the steps seen so far, weighted by the number of
            steps each update covers (the final update shows the value it is
            given). Defaults to ``None`` (average all).
        unit_name: Name of one step in the time-per-step display. Defaults to
            ``"step"``.
        interval: Minimum time in seconds between two redraws (``verbose=1``).
            Defaults to 0.05.
        stateless_metrics: Alternative to ``stateful_metrics``: only these names
            are averaged and all others are shown as given (what Keras's
            ``ProgbarLogger`` uses, as its logs already hold running means).
            At most one of the two may be set. Defaults to ``None``.

    Raises:
        ValueError: If ``target`` is neither ``None`` nor an int >= 0, ``width``
            is not a positive int, ``verbose`` is not 0, 1 or 2, or both
            ``stateful_metrics`` and ``stateless_metrics`` are given.

    Example:

    >>> import crnn
    >>> bar = crnn.utils.Progbar(3, verbose=2)
    >>> for step in range(1, 4):  # doctest: +ELLIPSIS
    ...     bar.update(step, [("loss", 1.0 / step)])
    3/3 - ...s - ...s/step - loss: 0.3333
    """

    def __init__(
        self,
        target: int | None,
        width: int = 20,
        verbose: int = 1,
        stateful_metrics: Iterable[str] | None = None,
        unit_name: str = "step",
        interval: float = 0.05,
        stateless_metrics: Iterable[str] | None = None,
    ):
        if target is not None and not is_int(target, minimum=0):
            raise ValueError(
                f"Expected `target` to be a non-negative int or None. Received: target={target!r}."
            )
        if not is_int(width, minimum=1):
            raise ValueError(f"Expected `width` to be a positive int. Received: width={width!r}.")
        if verbose not in (0, 1, 2):
            raise ValueError(f"Expected `verbose` to be 0, 1 or 2. Received: verbose={verbose!r}.")
        if stateful_metrics is not None and stateless_metrics is not None:
            raise ValueError(
                "Only one of `stateful_metrics` and `stateless_metrics` can be set. Received: "
                f"stateful_metrics={stateful_metrics!r}, stateless_metrics={stateless_metrics!r}."
            )
        self.target = None if target is None else int(target)
        self.width = int(width)
        self.verbose = verbose
        self.unit_name = unit_name
        self.interval = interval
        if stateless_metrics is not None:
            self.stateful_metrics = None
            self.stateless_metrics = set(stateless_metrics)
        else:
            self.stateful_metrics = set(stateful_metrics or ())
            self.stateless_metrics = None
        stdout_isatty = hasattr(sys.stdout, "isatty") and sys.stdout.isatty()
        # Redraw in place only where "\r" works; tests may set this to True.
        self._dynamic_display = (
            stdout_isatty or "ipykernel" in sys.modules or "PYCHARM_HOSTED" in os.environ
        )
        self._use_color = stdout_isatty
        self._seen_so_far = 0
        self._values = {}
        self._values_order = []
        self._start = time.time()
        self._last_update = 0.0
        self._time_after_first_step = None
        self._prev_total_width = 0

    def _is_averaged(self, name):
        if self.stateful_metrics is not None:
            return name not in self.stateful_metrics
        return name in self.stateless_metrics

    def update(self, current: int,
               values: Sequence[tuple[str, float]] | Mapping[str, float] | None = None,
               finalize: bool | None = None) -> None:
        """Updates the progress bar, and prints it if it is time to.

        Args:
            current: Index of the current step (1-based count of steps done).
            values: List of ``(name, value)`` pairs for the last step, or a dict,
                or ``None``. Averaged values (see ``stateful_metrics``) are
                accumulated; an array value is reduced to its mean.
            finalize: Whether this is the last update; ``None`` means
                ``current >= target`` (``False`` if the target is unknown).
                Defaults to ``None``.
        """
        if finalize is None:
            finalize = self.target is not None and current >= self.target
        if isinstance(values, dict):
            values = list(values.items())
        for name, value in values or []:
            if name not in self._values_order:
                self._values_order.append(name)
            value = float(np.mean(value))
            if not self._is_averaged(name):
                self._values[name] = [value, 1]
            elif finalize:
                # The final value of a running average is the epoch's value.
                self._values[name] = [value, 1]
            else:
                # Weight by the number of steps this update covers.
                steps = max(current - self._seen_so_far, 1)
                total, count = self._values.get(name, [0.0, 0])
                self._values[name] = [total + value * steps, count + steps]
        self._seen_so_far = current

        now = time.time()
        time_per_unit = self._estimate_step_duration(current, now)
        if self.verbose == 1:
            if not finalize and now - self._last_update < self.interval:
                return
            if not finalize and not self._dynamic_display:
                # A log file gets only the final line, not one line per redraw.
                self._last_update = now
                return
            self._print_bar_line(current, finalize, now, time_per_unit)
        elif self.verbose == 2 and finalize:
            count = self._count_text(current)
            line = f"{count} - {now - self._start:.0f}s - "
            line += _format_time_per_unit(time_per_unit, self.unit_name)
            line += self._values_text()
            _write(line + "\n")
        self._last_update = now

    def add(self, n: int,
            values: Sequence[tuple[str, float]] | Mapping[str, float] | None = None) -> None:
        """Advances the bar by ``n`` steps.

        Args:
            n: Number of steps done since the last update.
            values: Values of those steps, as for ``update``.
        """
        self.update(self._seen_so_far + n, values)

    def _count_text(self, current):
        if self.target is None or self.target == 0:
            return "%7d/Unknown" % current
        digits = int(math.log10(self.target)) + 1
        return f"%{digits}d/%d" % (current, self.target)

    def _values_text(self):
        text = ""
        for name in self._values_order:
            total, count = self._values[name]
            text += f" - {name}: " + _format_number(total / max(1, count))
        return text

    def _style(self, text, code):
        return f"\x1b[{code}m{text}\x1b[0m" if self._use_color else text

    def _print_bar_line(self, current, finalize, now, time_per_unit):
        count = self._count_text(current)
        if self.target and not finalize:
            clock = _format_eta(time_per_unit * (self.target - current))
        else:
            clock = f"{now - self._start:.0f}s"
        info = " " + _format_time_per_unit(time_per_unit, self.unit_name) + self._values_text()
        plain = count
        styled = self._style(count, "1")
        if self.target:
            done = min(int(self.width * current / self.target), self.width)
            left = self.width - done
            plain += " " + "━" * self.width
            if self._use_color:
                # Keras draws one glyph throughout and colours the done part green.
                styled += " " + self._style("━" * done, "32") + self._style("━" * left, "37")
            else:
                styled += " " + "━" * done + "─" * left
        plain += " " + clock + info
        styled += " " + self._style(clock, "1") + info
        line = styled
        if self._prev_total_width > len(plain):
            # Blank out what is left of a longer previous line.
            line += " " * (self._prev_total_width - len(plain))
        prefix = "\r" if self._dynamic_display else ""
        _write(prefix + line + ("\n" if finalize else ""))
        self._prev_total_width = len(plain)

    def _estimate_step_duration(self, current, now):
        # The first step often includes one-off work, so once more steps are
        # done it is left out of the estimate, as Keras does.
        if not current:
            return 0.0
        if self._time_after_first_step is not None and current > 1:
            per_unit = (now - self._time_after_first_step) / (current - 1)
        else:
            per_unit = (now - self._start) / current
        if current == 1:
            self._time_after_first_step = now
        return per_unit


def _write(text):
    sys.stdout.write(text)
    sys.stdout.flush()
