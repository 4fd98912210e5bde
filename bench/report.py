"""Turn the raw measurements of bench/run.py into figures, Markdown and a chart.

``finish(doc)`` adds the derived numbers (GFLOP/s, fraction of the sgemm peak, crnn's
ratios); ``markdown(doc)`` renders them; ``chart(doc, path)`` draws a PNG when matplotlib
is installed.
"""

from collections import defaultdict

GATES = {"lstm": 4, "gru": 3, "simple_rnn": 1}
CELL_NAMES = {"lstm": "LSTM", "gru": "GRU", "simple_rnn": "SimpleRNN"}
COMPETITORS = ("numpy", "torch", "keras")


def gflop(cell, mode, shape):
    """Work of one call in GFLOP: 2*B*T*G*H*(I+H) forward, 3x that for training.

    Example:
        >>> round(gflop("lstm", "training", (32, 50, 16, 64)), 4)
        0.1966
    """
    batch, timesteps, features, units = shape
    forward = 2.0 * batch * timesteps * GATES[cell] * units * (features + units) / 1e9
    return 3 * forward if mode == "training" else forward


def _row_key(result):
    return (result["cell"], result["mode"], result["size"], result["threads"])


def finish(doc):
    """Add GFLOP/s, peak fractions and ratios to ``doc`` in place."""
    results = doc["results"]
    peak = {}
    gemm_by_shape = {}
    for r in results:
        if r["lib"] != "gemm" or r["status"] != "ok":
            continue
        m, k, n = r["gemm"]
        r["gflop"] = 2.0 * m * k * n / 1e9
        r["gflops"] = r["gflop"] / r["median_s"]
        # Best sample rather than median: the peak is what the machine can do.
        r["best_gflops"] = r["gflop"] / r["min_s"]
        gemm_by_shape[(r["threads"], tuple(r["gemm"]))] = r["gflops"]
        if r["size"].startswith("square"):
            peak[r["threads"]] = max(peak.get(r["threads"], 0.0), r["best_gflops"])
    doc["gemm_peak_gflops"] = {str(t): v for t, v in sorted(peak.items())}

    rows = defaultdict(dict)
    for r in results:
        if r["lib"] == "gemm":
            continue
        rows[_row_key(r)][r["lib"]] = r
        if r["status"] != "ok":
            continue
        r["gflop"] = gflop(r["cell"], r["mode"], r["shape"])
        r["gflops"] = r["gflop"] / r["median_s"]
        if r["threads"] in peak:
            r["peak_fraction"] = r["gflops"] / peak[r["threads"]]
        if r["mode"] != "streaming":
            batch, timesteps, features, units = r["shape"]
            g = GATES[r["cell"]]
            r["gemm_input_gflops"] = gemm_by_shape.get(
                (r["threads"], (batch * timesteps, features, g * units)))
            r["gemm_step_gflops"] = gemm_by_shape.get((r["threads"], (batch, units, g * units)))

    ratios = []
    for key, by_lib in rows.items():
        ours = by_lib.get("crnn")
        if not ours or ours["status"] != "ok":
            continue
        for lib in COMPETITORS:
            other = by_lib.get(lib)
            if other and other["status"] == "ok":
                ratio = ours["median_s"] / other["median_s"]
                ours[f"ratio_vs_{lib}"] = ratio
                ratios.append(dict(cell=key[0], mode=key[1], size=key[2], threads=key[3],
                                   vs=lib, crnn_s=ours["median_s"], other_s=other["median_s"],
                                   ratio=ratio))
    doc["ratios"] = ratios
    doc["goals"] = goals(doc)


# --------------------------------------------------------------------------- goals

# The targets of the benchmark issue: (description, row filter, value of a row, limit, kind).
def _goal_specs():
    def ratio(vs):
        return lambda r: r.get(f"ratio_vs_{vs}")

    def sizes(*names):
        return lambda r: r["size"] in names

    small, big = sizes("S1", "S2"), sizes("S3", "S4", "S5")
    seq = ("inference", "training")
    return [
        ("LSTM vs torch, S1-S2: ratio <= 0.5",
         lambda r: r["cell"] == "lstm" and r["mode"] in seq and small(r), ratio("torch"), 0.5,
         "max"),
        ("GRU vs torch, S1-S2: ratio <= 0.3",
         lambda r: r["cell"] == "gru" and r["mode"] in seq and small(r), ratio("torch"), 0.3,
         "max"),
        ("all cells vs torch, S3-S5: ratio <= 1.0",
         lambda r: r["mode"] in seq and big(r), ratio("torch"), 1.0, "max"),
        ("all cells vs keras, every size: ratio <= 0.2",
         lambda r: r["mode"] in seq, ratio("keras"), 0.2, "max"),
        ("training at S4-S5, 1 thread: >= 80% of the sgemm peak",
         lambda r: r["mode"] == "training" and r["threads"] == 1 and sizes("S4", "S5")(r),
         lambda r: r.get("peak_fraction"), 0.8, "min"),
        ("streaming LSTM(64)+Dense(1): <= 5 us per step (crnn.streaming.Streamer)",
         lambda r: r["cell"] == "lstm" and r["mode"] == "streaming",
         _streamer_us, 5.0, "max"),
    ]


def _streamer_us(r):
    """µs per step of the Streamer variant of a crnn streaming row, if it was timed."""
    variant = (r.get("variants") or {}).get("crnn (Streamer)")
    return variant["median_s"] * 1e6 if variant and variant.get("median_s") else None


def goals(doc):
    """Check crnn's rows against the issue's targets; returns a list of dicts."""
    crnn_rows = [r for r in doc["results"] if r["lib"] == "crnn" and r["status"] == "ok"]
    out = []
    for text, keep, value, limit, kind in _goal_specs():
        values = [(value(r), r) for r in crnn_rows if keep(r) and value(r) is not None]
        out.append(_goal_entry(text, values, limit, kind))
    # Two threads >= 1.6x faster than one, at S3-S5: pairs of crnn rows.
    by_key = {(r["cell"], r["mode"], r["size"], r["threads"]): r for r in crnn_rows}
    values = []
    for (cell, mode, size, threads), r in by_key.items():
        one = by_key.get((cell, mode, size, 1))
        if threads == 2 and one and size in ("S3", "S4", "S5") and mode != "streaming":
            values.append((one["median_s"] / r["median_s"], r))
    out.append(_goal_entry("crnn 2 threads vs 1, S3-S5: speed-up >= 1.6", values, 1.6, "min"))
    return out


def _goal_entry(text, values, limit, kind):
    met = [v for v, _ in values if (v <= limit if kind == "max" else v >= limit)]
    worst = (max if kind == "max" else min)(values, key=lambda p: p[0]) if values else None
    return {
        "goal": text,
        "rows": len(values),
        "met": len(met),
        "worst": worst[0] if worst else None,
        "worst_row": (f"{worst[1]['cell']}/{worst[1]['mode']}/{worst[1]['size']}/"
                      f"t{worst[1]['threads']}") if worst else None,
    }


# --------------------------------------------------------------------------- Markdown


def _fmt(value):
    """3 significant figures without scientific notation."""
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _status_mark(result):
    if result is None:
        return "—"
    return {"skipped": "skip", "error": "err"}.get(result["status"], "?")


def markdown(doc):
    """The whole report as Markdown text."""
    libs = [lib for lib in doc["config"]["libs"]]
    competitors = [lib for lib in libs if lib != "crnn"]
    rows = defaultdict(dict)
    for r in doc["results"]:
        if r["lib"] != "gemm":
            rows[_row_key(r)][r["lib"]] = r
    peak = doc.get("gemm_peak_gflops", {})

    out = [f"# crnn benchmark{' (--quick)' if doc['quick'] else ''}", "",
           f"`{doc['command']}`, {doc['created']}, {doc.get('total_wall_s', 0):.0f} s. "
           "Times are medians; ratios are crnn time / other time (below 1: crnn is faster).",
           ""]
    out += _machine_lines(doc)

    out += ["", "## Single-GEMM peak (SciPy sgemm, float32)", ""]
    squares = sorted({r["size"] for r in doc["results"]
                      if r["lib"] == "gemm" and r["size"].startswith("square")},
                     key=lambda s: int(s[6:]))
    gemm_rows = []
    phases = ("start", "end")
    for threads in doc["config"]["threads"]:
        cells = []
        for name in squares:
            for phase in phases:
                hit = [r for r in doc["results"] if r["lib"] == "gemm" and r["size"] == name
                       and r["threads"] == threads and r.get("phase") == phase]
                cells.append(f"{_fmt(hit[0]['best_gflops'])} ({_fmt(hit[0]['gflops'])})"
                             if hit and hit[0]["status"] == "ok"
                             else _status_mark(hit[0] if hit else None))
        gemm_rows.append([str(threads)] + cells
                         + [_fmt(peak[str(threads)]) if str(threads) in peak else "—"])
    out += _table(["threads"] + [f"{n[6:]}³ {phase}" for n in squares for phase in phases]
                  + ["peak GF/s"], gemm_rows)
    out += ["", "GF/s of the best sample (of the median), at the start and at the end of each "
            "thread count's block; the peak is the best of them."]

    sequence_modes = [m for m in doc["config"]["modes"] if m != "streaming"]
    for cell in doc["config"]["cells"]:
        for mode in sequence_modes:
            header = ["size", "B,T,F,H", "thr"]
            for lib in libs:
                header += [f"{lib} ms", f"{lib} GF/s (%pk)"]
            header += [f"crnn/{lib}" for lib in competitors]
            body = []
            for size, shape in doc["config"]["sizes"].items():
                for threads in doc["config"]["threads"]:
                    by_lib = rows.get((cell, mode, size, threads), {})
                    line = [size, ",".join(map(str, shape)), str(threads)]
                    for lib in libs:
                        r = by_lib.get(lib)
                        if r and r["status"] == "ok":
                            pk = (f" ({100 * r['peak_fraction']:.0f}%)"
                                  if "peak_fraction" in r else "")
                            line += [_fmt(r["median_s"] * 1e3), _fmt(r["gflops"]) + pk]
                        else:
                            line += [_status_mark(r), ""]
                    for lib in competitors:
                        ratio = (by_lib.get("crnn") or {}).get(f"ratio_vs_{lib}")
                        line.append(f"{ratio:.2f}" if ratio is not None else "—")
                    body.append(line)
            out += ["", f"## {CELL_NAMES[cell]} {mode}", ""] + _table(header, body)

    if "streaming" in doc["config"]["modes"]:
        header = ["cell", "thr"] + [f"{lib} µs/step" for lib in libs if lib != "numpy"]
        header += ["crnn Streamer µs/step"]
        header += [f"crnn/{lib}" for lib in competitors if lib != "numpy"]
        header += [f"Streamer/{lib}" for lib in competitors if lib != "numpy"]
        body = []
        for cell in doc["config"]["cells"]:
            for threads in doc["config"]["threads"]:
                by_lib = rows.get((cell, "streaming", "stream", threads), {})
                line = [CELL_NAMES[cell], str(threads)]
                for lib in libs:
                    if lib == "numpy":
                        continue
                    r = by_lib.get(lib)
                    line.append(_fmt(r["median_s"] * 1e6) if r and r["status"] == "ok"
                                else _status_mark(r))
                crnn_row = by_lib.get("crnn") or {}
                streamer = _streamer_us(crnn_row) if crnn_row.get("status") == "ok" else None
                line.append(_fmt(streamer) if streamer is not None else "—")
                for lib in competitors:
                    if lib == "numpy":
                        continue
                    ratio = crnn_row.get(f"ratio_vs_{lib}")
                    line.append(f"{ratio:.2f}" if ratio is not None else "—")
                for lib in competitors:
                    if lib == "numpy":
                        continue
                    other = by_lib.get(lib)
                    ok = streamer is not None and other and other.get("status") == "ok"
                    line.append(f"{streamer / (other['median_s'] * 1e6):.2f}" if ok else "—")
                body.append(line)
        b, t, f, h = doc["config"]["stream_shape"]
        out += ["", f"## Streaming: stateful layer({h}) + Dense(1), input ({b},{t},{f}), "
                "one call per step", ""] + _table(header, body)

    out += ["", "## sgemm at each row's GEMM shapes (GF/s)", ""]
    body = []
    for cell in doc["config"]["cells"]:
        for size, (batch, timesteps, features, units) in doc["config"]["sizes"].items():
            for threads in doc["config"]["threads"]:
                g = GATES[cell]
                found = [r for r in doc["results"] if r["lib"] == "crnn" and r["cell"] == cell
                         and r["size"] == size and r["threads"] == threads
                         and r.get("gemm_input_gflops")]
                gin = _fmt(found[0]["gemm_input_gflops"]) if found else "—"
                gstep = (_fmt(found[0]["gemm_step_gflops"])
                         if found and found[0].get("gemm_step_gflops") else "—")
                body.append([CELL_NAMES[cell], size, str(threads),
                             f"({batch * timesteps},{features})x({features},{g * units})", gin,
                             f"({batch},{units})x({units},{g * units})", gstep])
    out += _table(["cell", "size", "thr", "input GEMM", "GF/s", "step GEMM", "GF/s"], body)

    out += ["", "## crnn against the goals of the benchmark issue", ""]
    body = []
    for g in doc.get("goals", []):
        worst = (f"{g['worst']:.2f} ({g['worst_row']})" if g["worst"] is not None else "—")
        body.append([g["goal"], f"{g['met']}/{g['rows']}", worst])
    out += _table(["goal", "rows met", "worst row"], body)

    checks = [w["info"].get("checks") for w in doc["workers"]
              if w["lib"] == "crnn" and w.get("info") and w["info"].get("checks")]
    if checks:
        out += ["", "## Sanity check: crnn forward vs the NumPy reference", ""]
        for cell, c in checks[0].items():
            detail = (f"max |diff| = {c['max_abs_diff_vs_reference']:.2e}"
                      if "max_abs_diff_vs_reference" in c else c.get("error"))
            out.append(f"- {CELL_NAMES[cell]} at {tuple(c['shape'])}: {detail}")

    notes = list(dict.fromkeys(doc["notes"]))
    grouped = defaultdict(list)
    for r in doc["results"]:
        if r["status"] != "ok":
            grouped[(r["lib"], r.get("note", r["status"]))].append(
                f"{r['cell']}/{r['mode']}/{r['size']}/t{r['threads']}")
    for (lib, note), where in grouped.items():
        shown = ", ".join(where[:4]) + (f", … ({len(where)} rows)" if len(where) > 4 else "")
        notes.append(f"{lib}: {note} [{shown}]")
    if notes:
        out += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(out)


def _machine_lines(doc):
    m = doc["machine"]
    v = m.get("versions", {})
    lines = ["## Machine", ""]
    cores = f"{m.get('usable_cpus', '?')} usable CPUs of {m.get('cpu_count')}"
    if m.get("physical_cores"):
        cores += f", {m['physical_cores']} physical cores"
    lines.append(f"- CPU: {m.get('cpu_model')} ({cores}); SIMD: "
                 f"{' '.join(m.get('cpu_simd', [])) or '?'}; memory {m.get('memory', '?')}")
    lines.append(f"- {m['platform']}, Python {m['python']}")
    lines.append("- " + ", ".join(f"{k} {val}" for k, val in v.items()))
    for pool in m.get("blas", []):
        if "note" in pool:
            lines.append(f"- BLAS: {pool['note']}")
        else:
            owner = next((lib for lib in ("numpy", "scipy", "torch") if f"{lib}." in
                          str(pool.get("filepath")) or f"/{lib}/" in str(pool.get("filepath"))),
                         "?")
            lines.append(f"- BLAS of {owner}: {pool.get('internal_api')} {pool.get('version')} "
                         f"({pool.get('prefix')}, {pool.get('architecture')}, "
                         f"{pool.get('threading_layer')})")
    for w in doc["workers"]:
        info = w.get("info") or {}
        if w["lib"] == "crnn" and info.get("path"):
            lines.append(f"- crnn {info.get('version')} from {info['path']}")
            break
    for w in doc["workers"]:
        info = w.get("info") or {}
        if w["lib"] == "torch" and info:
            lines.append(f"- torch threads {info.get('num_threads')} (interop "
                         f"{info.get('num_interop_threads')}) at threads={w['threads']}; "
                         f"oneDNN available: {info.get('mkldnn_enabled')}")
        if w["lib"] == "keras" and info:
            lines.append(f"- TensorFlow intra/inter-op threads {info.get('intra_op_threads')}/"
                         f"{info.get('inter_op_threads')} at threads={w['threads']}")
    if m.get("loadavg_start"):
        end = m.get("loadavg_end") or []
        lines.append(f"- load average (1 min) at start {m['loadavg_start'][0]:.2f}"
                     + (f", at end {end[0]:.2f}" if end else "")
                     + " — a busy machine makes every number noisier")
    return lines


# --------------------------------------------------------------------------- chart


def chart(doc, path):
    """Draw median times per library (log scale); returns a one-line message."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib not installed: no chart"
    try:
        modes = doc["config"]["modes"]
        threads = doc["config"]["threads"]
        libs = doc["config"]["libs"]
        fig, axes = plt.subplots(len(modes), len(threads), squeeze=False,
                                 figsize=(7 * len(threads), 3.5 * len(modes)))
        for i, mode in enumerate(modes):
            for j, thr in enumerate(threads):
                ax = axes[i][j]
                keys = []
                for r in doc["results"]:
                    key = (r["cell"], r["size"])
                    if (r["lib"] != "gemm" and r["mode"] == mode and r["threads"] == thr
                            and key not in keys):
                        keys.append(key)
                width = 0.8 / max(len(libs), 1)
                for k, lib in enumerate(libs):
                    xs, ys = [], []
                    for x, key in enumerate(keys):
                        hit = [r for r in doc["results"] if r["lib"] == lib
                               and r["mode"] == mode and r["threads"] == thr
                               and (r["cell"], r["size"]) == key and r["status"] == "ok"]
                        if hit:
                            xs.append(x + (k - (len(libs) - 1) / 2) * width)
                            ys.append(hit[0]["median_s"] * 1e3)
                    if xs:
                        ax.bar(xs, ys, width, label=lib)
                ax.set_yscale("log")
                ax.set_xticks(range(len(keys)))
                ax.set_xticklabels([f"{CELL_NAMES[c]}\n{s}" for c, s in keys], fontsize=7)
                ax.set_ylabel("median ms (log)")
                ax.set_title(f"{mode}, {thr} thread(s)")
                ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
    except Exception as err:  # the chart is optional: never lose the results over it
        return f"chart failed ({type(err).__name__}: {err}); results are in the JSON"
    return f"chart written to {path}"
