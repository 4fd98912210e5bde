"""Turn the raw measurements of bench/run.py into figures, Markdown and a chart.

``finish(doc)`` adds the derived numbers (GFLOP/s, the machine's peak, fractions of it,
crnn's ratios, the pool's stream-steps per second, the model-level ratios) and evaluates
the goals of the speed issue (issue 7, goals 1-7) and of the stream pool (issue 9);
``markdown(doc)`` renders them; ``chart(doc, path)`` draws a PNG when matplotlib is
installed.
"""

from collections import defaultdict

GATES = {"lstm": 4, "gru": 3, "simple_rnn": 1}
CELL_NAMES = {"lstm": "LSTM", "gru": "GRU", "simple_rnn": "SimpleRNN"}
COMPETITORS = ("torch", "ort", "keras", "numpy")
LIB_NAMES = {"crnn": "crnn", "torch": "PyTorch", "ort": "ONNX Runtime", "keras": "Keras",
             "numpy": "NumPy ref", "gemm": "SciPy OpenBLAS"}
MODEL_NAMES = {"charlstm": "char-LSTM text model", "forecaster": "stateful LSTM forecaster",
               "bilstm": "Embedding+Bidirectional(LSTM) classifier"}
GOAL_CELLS = ("lstm", "gru")
BIG = ("S3", "S4", "S5")


def gflop(cell, mode, shape):
    """Work of one call in GFLOP: 2*B*T*G*H*(I+H) forward, 3x that for training.

    Example:
        >>> round(gflop("lstm", "training", (32, 50, 16, 64)), 4)
        0.1966
    """
    batch, timesteps, features, units = shape
    forward = 2.0 * batch * timesteps * GATES[cell] * units * (features + units) / 1e9
    return 3 * forward if mode == "training" else forward


def _dtype(r):
    return r.get("dtype", "float32")


def _row_key(r):
    return (r["cell"], r["mode"], r["size"], r["threads"], _dtype(r))


def _ok(r):
    return bool(r) and r.get("status") == "ok"


# --------------------------------------------------------------------------- derived


def finish(doc):
    """Add peaks, GFLOP/s, peak fractions, ratios and goals to ``doc`` in place."""
    results = doc["results"]
    fma = next((r["fma"] for r in results if r["mode"] == "fma" and _ok(r)), None)
    doc["fma_peak"] = fma
    gemm_peaks = defaultdict(dict)       # threads -> lib -> best GF/s on squares
    gemm_by_shape = {}
    crnn_by_shape = {}                   # crnn's own kernels, one thread
    for r in results:
        if r["mode"] != "gemm" or not _ok(r):
            continue
        m, k, n = r["gemm"]
        # crnn's kernels run a chunk of ``rows``, ``repeat`` times per call (run.py)
        r["gflop"] = 2.0 * (r.get("rows") or m) * k * n * r.get("repeat", 1) / 1e9
        r["gflops"] = r["gflop"] / r["median_s"]
        r["best_gflops"] = r["gflop"] / r["min_s"]   # the peak is what the machine can do
        if r["lib"] == "gemm":
            gemm_by_shape[(r["threads"], tuple(r["gemm"]))] = r["gflops"]
        if r["lib"] == "crnn-gemm":
            crnn_by_shape[tuple(r["gemm"])] = r["gflops"]
        if r["size"].startswith("square"):
            t = str(r["threads"])
            gemm_peaks[t][r["lib"]] = max(gemm_peaks[t].get(r["lib"], 0.0), r["best_gflops"])
    peaks = {}
    for t in sorted({str(v) for v in doc["config"]["threads"]} | set(gemm_peaks)):
        candidates = dict(gemm_peaks.get(t, {}))
        if fma:
            candidates["fma"] = fma["float32"] * int(t)
        if candidates:
            source = max(candidates, key=candidates.get)
            peaks[t] = {"gflops": candidates[source], "source": source}
    doc["gemm_peaks"] = {t: dict(v) for t, v in gemm_peaks.items()}
    doc["peak"] = peaks

    rows = defaultdict(dict)
    for r in results:
        if r["mode"] not in ("inference", "training", "streaming") or r.get("gemm"):
            continue
        rows[_row_key(r)][r["lib"]] = r
        if not _ok(r):
            continue
        r["gflop"] = gflop(r["cell"], r["mode"], r["shape"])
        r["gflops"] = r["gflop"] / r["median_s"]
        if str(r["threads"]) in peaks and _dtype(r) == "float32":
            r["peak_fraction"] = r["gflops"] / peaks[str(r["threads"])]["gflops"]
        if r["mode"] != "streaming":
            batch, timesteps, features, units = r["shape"]
            g = GATES[r["cell"]]
            r["gemm_input_gflops"] = gemm_by_shape.get(
                (r["threads"], (batch * timesteps, features, g * units)))
            r["gemm_step_gflops"] = gemm_by_shape.get((r["threads"], (batch, units, g * units)))
            if r["threads"] == 1 and r["lib"] == "crnn":
                r["crnn_input_gflops"] = crnn_by_shape.get(
                    (batch * timesteps, features, g * units))
                r["crnn_step_gflops"] = crnn_by_shape.get((batch, units, g * units))

    ratios = []
    for key, by_lib in rows.items():
        ours = by_lib.get("crnn")
        if not _ok(ours):
            continue
        for lib in COMPETITORS:
            other = by_lib.get(lib)
            if _ok(other):
                ratio = ours["median_s"] / other["median_s"]
                ours[f"ratio_vs_{lib}"] = ratio
                ratios.append(dict(cell=key[0], mode=key[1], size=key[2], threads=key[3],
                                   vs=lib, crnn_s=ours["median_s"], other_s=other["median_s"],
                                   ratio=ratio))
        # The goal's yardstick: the faster of torch and ORT (inference), torch (training).
        rivals = [by_lib[lib] for lib in (("torch", "ort") if key[1] != "training"
                                          else ("torch",)) if _ok(by_lib.get(lib))]
        if rivals and key[1] in ("inference", "training"):
            best = min(rivals, key=lambda r: r["median_s"])
            ours["ratio_vs_best"] = ours["median_s"] / best["median_s"]
            ours["best_rival"] = best["lib"]
        if key[4] == "float64":
            f32 = rows.get(key[:4] + ("float32",), {}).get("crnn")
            if _ok(f32):
                ours["ratio_vs_float32"] = ours["median_s"] / f32["median_s"]
    for by_lib in rows.values():
        avx2, ours = by_lib.get("crnn-avx2"), by_lib.get("crnn")
        if _ok(avx2) and _ok(ours):
            avx2["ratio_vs_crnn"] = avx2["median_s"] / ours["median_s"]
            if ours.get("best_rival"):
                avx2["ratio_vs_best"] = (avx2["median_s"] * ours["ratio_vs_best"]
                                         / ours["median_s"])
                avx2["best_rival"] = ours["best_rival"]
    doc["ratios"] = ratios

    pool = defaultdict(dict)
    for r in results:
        if r["mode"] == "pool":
            pool[(r["n"], r["variant"], r["threads"])][r["lib"]] = r
            if _ok(r):
                stepping = r["n"] if r["variant"] == "all" else r["n"] // 2
                r["stream_steps_per_s"] = stepping / r["median_s"]
    for by_lib in pool.values():
        if _ok(by_lib.get("crnn")) and _ok(by_lib.get("ort")):
            by_lib["crnn"]["ratio_vs_ort"] = by_lib["crnn"]["median_s"] / by_lib["ort"]["median_s"]

    models = defaultdict(dict)
    for r in results:
        if r["mode"] in ("fit", "predict"):
            models[(r["cell"], r["mode"], r["threads"])][r["lib"]] = r
    for by_lib in models.values():
        ours = by_lib.get("crnn")
        for lib in ("keras", "torch"):
            if _ok(ours) and _ok(by_lib.get(lib)):
                ours[f"ratio_vs_{lib}"] = ours["median_s"] / by_lib[lib]["median_s"]
    doc["goals"] = goals(doc)


# --------------------------------------------------------------------------- goals


def _streamer_us(r):
    """µs per step of the Streamer variant of a crnn streaming row, if it was timed."""
    variant = (r.get("variants") or {}).get("crnn (Streamer)")
    return variant["median_s"] * 1e6 if variant and variant.get("median_s") else None


def _label(r):
    dtype = "" if _dtype(r) == "float32" else f" {_dtype(r)}"
    return f"{CELL_NAMES.get(r['cell'], r['cell'])} {r['mode']} {r['size']} t{r['threads']}{dtype}"


def goals(doc):
    """Each goal of issue 7 (1-7), the pool's (issue 9) and the model-level section's,
    checked row by row. Returns a list of {id, goal, checks: [{row, value, limit, ok}],
    met, total, worst, status}."""
    crnn = [r for r in doc["results"] if r["lib"] == "crnn" and _ok(r)]
    seq = [r for r in crnn if r["mode"] in ("inference", "training") and _dtype(r) == "float32"
           and r["cell"] in GOAL_CELLS]
    out = []

    def add(gid, text, checks, note=None):
        met = sum(c["ok"] for c in checks)
        bad = [c for c in checks if not c["ok"]]
        worst = None
        if checks and all(c["kind"] == "info" for c in checks):
            worst = max(checks, key=lambda c: c["value"])
        elif checks:
            worst = max(bad or checks, key=lambda c: (c["value"] / c["limit"]
                                                      if c["kind"] == "max"
                                                      else c["limit"] / max(c["value"], 1e-12)))
        status = ("no rows" if not checks else "info" if worst and worst["kind"] == "info"
                  else "pass" if met == len(checks) else "fail")
        out.append(dict(id=gid, goal=text, checks=checks, met=met, total=len(checks),
                        worst=worst, status=status, note=note))

    def check(row, value, limit, kind="max"):
        ok = (True if kind == "info" else value <= limit if kind == "max" else value >= limit)
        return dict(row=row, value=value, limit=limit, kind=kind, ok=bool(ok))

    add("1", "LSTM/GRU, S1-S5, every thread count: inference <= 1.0x the faster of PyTorch "
        "and ONNX Runtime; training <= 1.0x PyTorch",
        [check(_label(r) + f" vs {r['best_rival']}", r["ratio_vs_best"], 1.0)
         for r in seq if "ratio_vs_best" in r])
    add("2", "framework overhead: <= 0.5x at S1 and <= 0.8x at S2 (same yardstick as 1)",
        [check(_label(r) + f" vs {r['best_rival']}", r["ratio_vs_best"],
               0.5 if r["size"] == "S1" else 0.8)
         for r in seq if "ratio_vs_best" in r and r["size"] in ("S1", "S2")])
    add("3", "S3-S5, one thread: inference >= 85%, training >= 80% of the machine's "
        "single-core peak (best of FMA probe and OpenBLAS/torch/ORT GEMM)",
        [check(_label(r), r["peak_fraction"], 0.85 if r["mode"] == "inference" else 0.80,
               "min")
         for r in seq if r["size"] in BIG and r["threads"] == 1 and "peak_fraction" in r])
    by_key = {_row_key(r): r for r in seq}
    pairs = []
    for key, r in by_key.items():
        one = by_key.get(key[:3] + (1, key[4]))
        if key[3] == 2 and one and key[2] in BIG:
            pairs.append(check(_label(r), one["median_s"] / r["median_s"], 1.7, "min"))
    add("4", "S3-S5: two threads >= 1.7x faster than one", pairs)
    stream = []
    for r in crnn:
        if r["mode"] == "streaming" and r["cell"] == "lstm":
            stream.append(check(f"predict_on_batch t{r['threads']} (µs)",
                                r["median_s"] * 1e6, 10.0))
            us = _streamer_us(r)
            if us is not None:
                stream.append(check(f"Streamer t{r['threads']} (µs)", us, 2.0))
    add("5", "batch-1 stateful LSTM(64)+Dense(1): predict_on_batch <= 10 µs, Streamer <= 2 µs "
        "per step", stream)
    add("6", "float64 <= 2.2x float32 (crnn, same row)",
        [check(_label(r), r["ratio_vs_float32"], 2.2) for r in crnn
         if "ratio_vs_float32" in r])
    isa = doc["machine"].get("isa", "?")
    avx2 = [r for r in doc["results"] if r["lib"] == "crnn-avx2" and _ok(r)]
    avx2_info = next((w.get("info", {}).get("isa") for w in doc["workers"]
                      if w["lib"] == "crnn-avx2" and w.get("info")), None) or {}
    if avx2 and avx2_info.get("reads_CRNN_ISA") is False:
        note = ("this crnn does not read CRNN_ISA: the 'AVX2' rows ran its default path, so "
                "goal 7 is not measured by this run")
        avx2 = []
    elif avx2:
        note = (f"crnn run with CRNN_ISA=avx2 on this {isa} machine (its AVX2+FMA code; "
                "SciPy's OpenBLAS keeps its own kernel). It works: its outputs passed the "
                "cross-check against the NumPy reference. The values are the AVX2 path's "
                "time over the AVX-512 path's (2 = half the vector width fully paid); the "
                "issue sets no number, so they are shown, not judged. The portable "
                "(non-x86) build is a compile check, not a timing.")
    elif any(w["lib"] == "crnn-avx2" and w.get("skipped") for w in doc["workers"]):
        why = next(w["skipped"] for w in doc["workers"]
                   if w["lib"] == "crnn-avx2" and w.get("skipped"))
        note = f"not measured by this run: {why}. Goals 1-6 measure the {isa} path."
    elif isa == "AVX-512":
        note = (f"not measured by this run (section avx2 not run): goals 1-6 measure the "
                f"{isa} path. The portable build is a compile check, not a timing.")
    else:
        note = f"this run is on an {isa} machine: goals 1-6 above are the check of that path"
    add("7", "machines without AVX-512 keep working and tuned (AVX2+FMA path); non-x86 "
        "builds compile",
        [check(_label(r) + " AVX2/AVX-512", r["ratio_vs_crnn"], None, "info")
         for r in avx2 if "ratio_vs_crnn" in r], note=note)

    pool_checks = []
    streamer = {r["threads"]: _streamer_us(r) for r in crnn
                if r["mode"] == "streaming" and r["cell"] == "lstm"}
    for r in crnn:
        if r["mode"] != "pool":
            continue
        if r["n"] in (64, 1024) and "ratio_vs_ort" in r:
            pool_checks.append(check(f"N={r['n']} {r['variant']} vs ORT", r["ratio_vs_ort"],
                                     1.0 if r["variant"] == "all" else 1.5))
        if r["n"] == 1 and streamer.get(r["threads"]):
            pool_checks.append(check("N=1 vs Streamer", r["median_s"] * 1e6
                                     / streamer[r["threads"]], 1.5))
    add("pool", "StreamPool (issue 9), one thread: <= 1.0x ONNX Runtime at N=64 and 1024, "
        "<= 1.5x when a random half steps; N=1 within 1.5x of the Streamer", pool_checks)

    model_checks = []
    for r in crnn:
        if r["mode"] == "fit":
            for lib, limit in (("keras", 0.5), ("torch", 1.0)):
                if f"ratio_vs_{lib}" in r:
                    model_checks.append(check(f"{r['cell']} fit t{r['threads']} vs {lib}",
                                              r[f"ratio_vs_{lib}"], limit))
    add("models", "whole models, fit per epoch: <= 0.5x Keras and <= 1.0x PyTorch, at every "
        "thread count", model_checks)
    return out


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


def _ms(r):
    return _fmt(r["median_s"] * 1e3)


def _ratio(value):
    return f"{value:.2f}" if value is not None else "—"


def markdown(doc):
    """The whole report as Markdown text."""
    libs = list(doc["config"]["libs"])
    competitors = [lib for lib in libs if lib != "crnn"]
    rows = defaultdict(dict)
    for r in doc["results"]:
        if r["mode"] in ("inference", "training", "streaming") and not r.get("gemm"):
            rows[_row_key(r)][r["lib"]] = r
    threads_list = doc["config"]["threads"]

    out = [f"# crnn benchmark{' (--quick)' if doc['quick'] else ''}", "",
           f"`{doc['command']}`, {doc['created']}, {doc.get('total_wall_s', 0):.0f} s. "
           "Times are medians; ratios are crnn time / other time (below 1: crnn is faster).",
           ""]
    if doc.get("mismatch"):
        out += [f"**RUN STOPPED: implementations disagree: {doc['mismatch']}**", ""]
    out += _machine_lines(doc)
    out += _duration_lines(doc)
    out += _goal_lines(doc)
    out += _peak_lines(doc)

    sequence_modes = [m for m in doc["config"]["modes"] if m != "streaming"]
    for cell in doc["config"]["cells"]:
        for mode in sequence_modes:
            header = ["size", "B,T,F,H", "thr"]
            shown = [lib for lib in libs if not (lib == "ort" and mode == "training")]
            for lib in shown:
                header += [f"{lib} ms", f"{lib} GF/s (%pk)"]
            header += [f"crnn/{lib}" for lib in shown if lib != "crnn"]
            header += ["crnn/best"]
            body = []
            for size, shape in doc["config"]["sizes"].items():
                for threads in threads_list:
                    by_lib = rows.get((cell, mode, size, threads, "float32"), {})
                    if not by_lib:
                        continue
                    line = [size, ",".join(map(str, shape)), str(threads)]
                    for lib in shown:
                        r = by_lib.get(lib)
                        if _ok(r):
                            pk = (f" ({100 * r['peak_fraction']:.0f}%)"
                                  if "peak_fraction" in r else "")
                            line += [_ms(r), _fmt(r["gflops"]) + pk]
                        else:
                            line += [_status_mark(r), ""]
                    ours = by_lib.get("crnn") or {}
                    line += [_ratio(ours.get(f"ratio_vs_{lib}")) for lib in shown if lib != "crnn"]
                    best = ours.get("ratio_vs_best")
                    line.append(f"{best:.2f} ({ours['best_rival']})" if best is not None else "—")
                    body.append(line)
            if body:
                out += ["", f"## {CELL_NAMES[cell]} {mode}", ""] + _table(header, body)
    out += ["", "crnn/best: crnn over the faster of PyTorch and ONNX Runtime (inference) or "
            "over PyTorch (training), the yardstick of goals 1-2. %pk: fraction of the "
            "machine peak at that thread count (see the peak table)."]

    f64 = [r for r in doc["results"] if r["lib"] == "crnn" and _dtype(r) == "float64"]
    if f64:
        body = []
        for r in f64:
            f32 = rows.get(_row_key(r)[:4] + ("float32",), {}).get("crnn")
            body.append([CELL_NAMES[r["cell"]], r["mode"], r["size"], str(r["threads"]),
                         _ms(f32) if _ok(f32) else _status_mark(f32),
                         _ms(r) if _ok(r) else _status_mark(r),
                         _ratio(r.get("ratio_vs_float32"))])
        out += ["", "## crnn float64 against float32 (goal 6)", ""]
        out += _table(["cell", "mode", "size", "thr", "float32 ms", "float64 ms",
                       "float64/float32"], body)

    avx2 = [r for r in doc["results"] if r["lib"] == "crnn-avx2"]
    if avx2:
        body = []
        for r in avx2:
            ours = rows.get(_row_key(r), {}).get("crnn")
            best = r.get("ratio_vs_best")
            body.append([CELL_NAMES[r["cell"]], r["mode"], r["size"], str(r["threads"]),
                         _ms(ours) if _ok(ours) else _status_mark(ours),
                         _ms(r) if _ok(r) else _status_mark(r),
                         _ratio(r.get("ratio_vs_crnn")),
                         f"{best:.2f} ({r['best_rival']})" if best is not None else "—"])
        out += ["", "## crnn's AVX2+FMA path (CRNN_ISA=avx2) against its default path (goal 7)",
                ""]
        out += _table(["cell", "mode", "size", "thr", "default ms", "AVX2 ms", "AVX2/default",
                       "AVX2/best"], body)
        out += ["", "AVX2/best: the AVX2 path over the faster competitor of the same row "
                "(which ran its own best code on this CPU)."]

    if "streaming" in doc["config"]["modes"] and any(r["mode"] == "streaming"
                                                     for r in doc["results"]):
        others = [lib for lib in competitors if lib != "numpy"]
        header = ["cell", "thr", "crnn predict_on_batch µs", "crnn Streamer µs"]
        header += [f"{lib} µs" for lib in others]
        header += [f"Streamer/{lib}" for lib in others]
        body = []
        for cell in doc["config"]["cells"]:
            for threads in threads_list:
                by_lib = rows.get((cell, "streaming", "stream", threads, "float32"), {})
                if not by_lib:
                    continue
                ours = by_lib.get("crnn") or {}
                streamer = _streamer_us(ours) if _ok(ours) else None
                line = [CELL_NAMES[cell], str(threads),
                        _fmt(ours["median_s"] * 1e6) if _ok(ours) else _status_mark(ours),
                        _fmt(streamer) if streamer is not None else "—"]
                for lib in others:
                    r = by_lib.get(lib)
                    line.append(_fmt(r["median_s"] * 1e6) if _ok(r) else _status_mark(r))
                for lib in others:
                    r = by_lib.get(lib)
                    line.append(_ratio(streamer / (r["median_s"] * 1e6))
                                if streamer is not None and _ok(r) else "—")
                body.append(line)
        b, t, f, h = doc["config"]["stream_shape"]
        out += ["", f"## Streaming: stateful layer({h}) + Dense(1), input ({b},{t},{f}), "
                "one call per step", ""] + _table(header, body)
        out += ["", "ONNX Runtime: one `InferenceSession.run` of a one-step graph (cell + "
                "Dense) with the states passed in and out."]

    out += _pool_lines(doc)
    out += _model_lines(doc)

    gemm_rows = [r for r in doc["results"] if r["lib"] == "crnn" and r.get("gemm_input_gflops")]
    if gemm_rows:
        body = []
        seen = set()
        for r in gemm_rows:
            key = (r["cell"], r["size"], r["threads"])
            if key in seen:
                continue
            seen.add(key)
            batch, timesteps, features, units = r["shape"]
            g = GATES[r["cell"]]
            body.append([CELL_NAMES[r["cell"]], r["size"], str(r["threads"]),
                         f"({batch * timesteps},{features})x({features},{g * units})",
                         _fmt(r["gemm_input_gflops"]),
                         _fmt(r["crnn_input_gflops"]) if r.get("crnn_input_gflops") else "—",
                         f"({batch},{units})x({units},{g * units})",
                         _fmt(r["gemm_step_gflops"]) if r.get("gemm_step_gflops") else "—",
                         _fmt(r["crnn_step_gflops"]) if r.get("crnn_step_gflops") else "—"])
        out += ["", "## SciPy sgemm and crnn's own kernels at each row's GEMM shapes (GF/s)",
                ""]
        out += _table(["cell", "size", "thr", "input GEMM", "sgemm", "crnn", "step GEMM",
                       "sgemm", "crnn"], body)
        out += ["", "crnn: its product kernels on one thread, through its test hooks "
                "(`crnn._kernels._cells.packed_product` on a B packed once, as a call packs "
                "W and R once): the step GEMM on the per-step kernel, the input GEMM on the "
                "cache-blocked kernel of the input projection, over a chunk of its rows as "
                "the sequence kernels project one (`inference_chunk`: about 512 KiB of "
                "products, more for a large W); each on the same arrays, several products "
                "per timed call."]
    out += _outside_gemm_lines(doc)

    checks = [(w["lib"], w["threads"], c) for w in doc["workers"]
              for c in (w.get("checks") or [])]
    if checks:
        out += ["", "## Numeric cross-checks (a failure stops the run)", ""]
        seen = set()
        for _lib, _threads, c in checks:
            if c["what"] in seen:
                continue
            seen.add(c["what"])
            out.append(f"- {c['what']}: max |diff| = {c['max_abs_diff']:.1e} "
                       f"(limit {c['atol']:g})")

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


def _outside_gemm_lines(doc):
    """Per crnn inference row, one thread: its time against the time its products would
    take at crnn's own kernels' speed (the input projection once, the step product T
    times): what is left is the time outside the products (activations, copies, packing,
    the call itself)."""
    body = []
    for r in doc["results"]:
        if (r["lib"] != "crnn" or r["mode"] != "inference" or r["threads"] != 1
                or _dtype(r) != "float32" or not _ok(r) or not r.get("crnn_input_gflops")
                or not r.get("crnn_step_gflops")):
            continue
        batch, timesteps, features, units = r["shape"]
        g = GATES[r["cell"]]
        input_s = 2e-9 * batch * timesteps * features * g * units / r["crnn_input_gflops"]
        step_s = 2e-9 * batch * timesteps * units * g * units / r["crnn_step_gflops"]
        total = r["median_s"]
        body.append([CELL_NAMES[r["cell"]], r["size"], ",".join(map(str, r["shape"])),
                     _fmt(total * 1e3), _fmt(input_s * 1e3), _fmt(step_s * 1e3),
                     f"{max(0.0, 1 - (input_s + step_s) / total):.0%}"])
    if not body:
        return []
    return (["", "## crnn inference, one thread: time outside the products", ""]
            + _table(["cell", "size", "B,T,F,H", "crnn ms", "input product ms",
                      "step products ms", "outside the products"], body)
            + ["", "The products' times are their GFLOP at the speed of crnn's own kernels "
               "at the same shapes (the table above): the input projection once, the "
               "per-step product T times. The rest of a call is activations, state "
               "updates, copies, packing R (and W), the caches' misses between the products "
               "and the call's fixed cost."])


def _duration_lines(doc):
    """Wall time per section (summed over its worker processes)."""
    spent = defaultdict(float)
    for w in doc["workers"]:
        kind = w.get("kind") or "kernels"
        spent["models" if kind == "models" else "peak" if w["lib"] in ("gemm", "crnn-gemm")
              else f"{w['lib']} (kernels, streaming, pool)"] += w.get("wall_s") or 0.0
    if not spent:
        return []
    parts = ", ".join(f"{k} {v:.0f} s" for k, v in spent.items())
    return ["", f"Wall time by worker group: {parts}; total {doc.get('total_wall_s', 0):.0f} s."]


def _goal_lines(doc):
    goals_ = doc.get("goals") or []
    if not goals_:
        return []
    out = ["", "## Goals (issue 7: 1-7; issue 9: pool; end to end: models)", ""]
    body = []
    for g in goals_:
        w = g["worst"]
        worst = f"{w['value']:.2f} ({w['row']})" if w else "—"
        body.append([g["id"], g["goal"], g["status"].upper() if g["total"] else "n/a",
                     f"{g['met']}/{g['total']}", worst])
    out += _table(["#", "goal", "status", "rows met", "worst row (value)"], body)
    for g in goals_:
        if g.get("note"):
            out += ["", f"Goal {g['id']}: {g['note']}"]
    detail = []
    for g in goals_:
        for c in g["checks"]:
            if c["kind"] == "info":
                detail.append([g["id"], c["row"], f"{c['value']:.3g}", "—", "info"])
                continue
            op = "<=" if c["kind"] == "max" else ">="
            detail.append([g["id"], c["row"], f"{c['value']:.3g}", f"{op} {c['limit']:g}",
                           "pass" if c["ok"] else "**fail**"])
    if detail:
        out += ["", "<details><summary>Every checked row</summary>", ""]
        out += _table(["goal", "row", "value", "limit", ""], detail)
        out += ["", "</details>"]
    return out


def _peak_lines(doc):
    fma = doc.get("fma_peak")
    peaks = doc.get("peak") or {}
    gemm_peaks = doc.get("gemm_peaks") or {}
    if not fma and not gemm_peaks:
        return []
    out = ["", "## Machine peak (float32 GF/s)", ""]
    if fma:
        out.append(f"FMA probe (bench/fmapeak.py, one core, {fma['isa']} registers, "
                   f"independent FMA chains): float32 {fma['float32']:.0f} GF/s, float64 "
                   f"{fma['float64']:.0f} GF/s.")
        out.append("")
    libs = [lib for lib in ("gemm", "torch", "ort") if any(lib in v for v in gemm_peaks.values())]
    header = ["threads", "FMA probe x threads"] + [
        {"gemm": "SciPy OpenBLAS sgemm", "torch": "torch.mm", "ort": "ORT MatMul"}[lib]
        for lib in libs] + ["machine peak (source)"]
    body = []
    for t in sorted(peaks, key=int):
        line = [t, _fmt(fma["float32"] * int(t)) if fma else "—"]
        line += [_fmt(gemm_peaks.get(t, {})[lib]) if lib in gemm_peaks.get(t, {}) else "—"
                 for lib in libs]
        line.append(f"{_fmt(peaks[t]['gflops'])} ({peaks[t]['source']})")
        body.append(line)
    out += _table(header, body)
    out += ["", "GEMM columns: best sample of square products (1024³, 2048³; SciPy's at the "
            "start and the end of each thread count's block). The machine peak, the "
            "denominator of every %pk, is the best of all of them."]
    return out


def _pool_lines(doc):
    pool = [r for r in doc["results"] if r["mode"] == "pool"]
    if not pool:
        return []
    by = defaultdict(dict)
    for r in pool:
        by[(r["n"], r["variant"], r["threads"])][r["lib"]] = r
    body = []
    for (n, variant, threads), libs in sorted(by.items()):
        ours, ort = libs.get("crnn"), libs.get("ort")
        line = [str(n), variant, str(threads)]
        for r in (ours, ort):
            line += ([_fmt(r["median_s"] * 1e6), f"{r['stream_steps_per_s']:,.0f}"]
                     if _ok(r) else [_status_mark(r), ""])
        line.append(_ratio((ours or {}).get("ratio_vs_ort")))
        body.append(line)
    _, _, f, h = doc["config"].get("pool_shape", [1, 1, 16, 64])
    out = ["", f"## Stream pool: LSTM({h})+Dense(1), {f} features, N streams, one step per "
           "call", ""]
    out += _table(["N", "streams stepping", "thr", "crnn StreamPool µs/call",
                   "crnn stream-steps/s", "ORT µs/call", "ORT stream-steps/s", "crnn/ORT"],
                  body)
    out += ["", "all: every open stream steps; half: a random half (a different one each "
            "call, in random order). crnn: `StreamPool.step(ids, X)`; ONNX Runtime: the "
            "one-step graph at batch N (half: states gathered by index, run at N/2, "
            "scattered back)."]
    return out


def _model_lines(doc):
    res = [r for r in doc["results"] if r["mode"] in ("fit", "predict")]
    if not res:
        return []
    by = defaultdict(dict)
    for r in res:
        by[(r["cell"], r["mode"], r["threads"])][r["lib"]] = r
    libs = [lib for lib in doc["config"].get("model_libs", ("crnn", "keras", "torch"))]
    header = ["model", "what", "thr"] + [f"{lib} s" for lib in libs]
    header += [f"crnn/{lib}" for lib in libs if lib != "crnn"]
    body = []
    order = {name: i for i, name in enumerate(MODEL_NAMES)}
    for (name, mode, threads), by_lib in sorted(by.items(),
                                                key=lambda kv: (order.get(kv[0][0], 9),
                                                                kv[0][1], kv[0][2])):
        line = [name, "fit / epoch" if mode == "fit" else "predict", str(threads)]
        for lib in libs:
            r = by_lib.get(lib)
            line.append(f"{r['median_s']:.3f}" if _ok(r) else _status_mark(r))
        ours = by_lib.get("crnn") or {}
        line += [_ratio(ours.get(f"ratio_vs_{lib}")) for lib in libs if lib != "crnn"]
        body.append(line)
    out = ["", "## Whole models: fit per epoch and predict (seconds)", ""]
    out += _table(header, body)
    data = {}
    for w in doc["workers"]:
        data.update((w.get("info") or {}).get("data") or {})
    out += [""] + [f"- {name}: {MODEL_NAMES.get(name, name)}; {info}"
                   for name, info in data.items()]
    return out


def _machine_lines(doc):
    m = doc["machine"]
    v = m.get("versions", {})
    lines = ["## Machine", ""]
    cores = f"{m.get('usable_cpus', '?')} usable CPUs of {m.get('cpu_count')}"
    if m.get("physical_cores"):
        cores += f", {m['physical_cores']} physical cores"
    lines.append(f"- CPU: {m.get('cpu_model')} ({cores}); ISA: **{m.get('isa', '?')}** "
                 f"(flags: {' '.join(m.get('cpu_simd', [])) or '?'}); memory "
                 f"{m.get('memory', '?')}")
    lines.append(f"- {m['platform']}, Python {m['python']}")
    lines.append("- " + ", ".join(f"{k} {val}" for k, val in v.items()))
    unset = doc["config"].get("unset_env", [])
    envs = {tuple(sorted((w.get("env") or {}).items())) for w in doc["workers"]}
    leaked = sorted({k for env in envs for k, val in env if k in unset and val is not None})
    lines.append(f"- worker environment: {', '.join(unset)} "
                 + (f"**still set: {', '.join(leaked)}**" if leaked else "unset in every worker")
                 + f" (this shell: {m.get('env_unset_in_workers')})")
    seen = set()
    for w in doc["workers"]:
        info = w.get("info") or {}
        for pool in info.get("blas") or []:
            key = (w["lib"], w.get("kind"), pool.get("library"), pool.get("internal_api"),
                   pool.get("architecture"), pool.get("num_threads"), pool.get("filepath"),
                   w["threads"])
            if key in seen or "note" in pool and not pool.get("internal_api"):
                continue
            seen.add(key)
            where = f"{w['lib']} worker, threads={w['threads']}"
            text = (f"- BLAS ({where}): {pool.get('library')}: {pool.get('internal_api')} "
                    f"{pool.get('version') or ''} kernel **{pool.get('architecture') or '—'}**, "
                    f"{pool.get('num_threads')} threads")
            if pool.get("filepath"):
                text += f" ({pool['filepath'].rsplit('/', 1)[-1]})"
            if pool.get("note"):
                text += f"; {pool['note']}"
            lines.append(text)
        if w["lib"] in ("crnn", "crnn-avx2") and info.get("path") \
                and (w["lib"], "path") not in seen:
            seen.add((w["lib"], "path"))
            isa = info.get("isa") or {}
            lines.append(f"- {w['lib']} worker: crnn {info.get('version')} from {info['path']}; "
                         f"kernel ISA: {isa.get('isa', '?')} ({isa.get('source', '?')})")
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
