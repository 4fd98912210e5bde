"""Generate tests/golden/ops_golden.npz: recurrent-op golden values from Keras 3 and PyTorch.

Run once, by hand, from the repository root (needs keras>=3 with TensorFlow, and torch):

    python tests/golden/make_ops_golden.py

The test suite only reads the .npz it writes (tests/test_golden_ops.py); it never imports
keras, tensorflow or torch.

Every case stores, under keys ``"<case>/<name>"``:

    x, kernel, recurrent_kernel, bias (absent when use_bias=False), h0, c0 (LSTM only),
    mask (absent when unmasked), outputs, h, c (LSTM only),
    W_o, W_h, W_c (LSTM only): the fixed random weights of the linear functional
        L = sum(W_o * outputs) + sum(W_h * h_final) + sum(W_c * c_final),
    d_x, d_kernel, d_recurrent_kernel, d_bias, d_h0, d_c0: the gradients of L.

Weights are always in Keras 3's layout (LSTM gates i, f, c, o; GRU z, r, h, bias (2, 3u) with
reset_after=True). For PyTorch cases the mapping from torch's layout is done here, so the
stored arrays are directly what ``crnn.ops`` takes. The key ``"__meta__"`` holds a JSON string
(a 0-d unicode array, so ``allow_pickle=False`` works) with each case's options and the
generator and library versions (``tests/golden_meta.py``).
"""

import os
import sys
import zlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from golden_meta import meta_array  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ops_golden.npz")

# Masks used by the masked cases (1 = step used). Row 1 starts masked, so its outputs must be
# zeros before its first unmasked step; row 2 has a gap of several steps.
MASK_3x6 = np.array(
    [[1, 1, 0, 1, 0, 1],
     [0, 0, 1, 1, 0, 1],
     [1, 0, 0, 0, 1, 1]], dtype=bool)
# Row 2 is masked everywhere: its outputs stay zero and its states stay the initial ones.
MASK_3x5_WITH_EMPTY = np.array(
    [[0, 1, 1, 0, 1],
     [1, 1, 0, 1, 0],
     [0, 0, 0, 0, 0]], dtype=bool)


def keras_cases():
    """Options of the Keras cases; shapes are (batch, timesteps, features, units)."""
    cases = []

    def add(name, cell, shape, **options):
        spec = dict(name=name, cell=cell, shape=shape, source="keras", dtype="float64",
                    go_backwards=False, mask=None, activation="tanh",
                    recurrent_activation="sigmoid", use_bias=True, reset_after=True,
                    weight_scale=0.6)
        spec.update(options)
        cases.append(spec)

    for cell in ("lstm", "gru", "simple_rnn"):
        add(f"keras_{cell}_basic", cell, (2, 5, 3, 3))
        add(f"keras_{cell}_backwards", cell, (2, 4, 3, 2), go_backwards=True)
        add(f"keras_{cell}_mask_gaps", cell, (3, 6, 3, 3), mask="MASK_3x6")
        add(f"keras_{cell}_mask_backwards", cell, (3, 6, 3, 2), mask="MASK_3x6",
            go_backwards=True)
        add(f"keras_{cell}_mask_empty_sample", cell, (3, 5, 3, 2), mask="MASK_3x5_WITH_EMPTY")
        add(f"keras_{cell}_relu", cell, (2, 5, 3, 4), activation="relu")
        add(f"keras_{cell}_linear_nobias", cell, (2, 4, 3, 3), activation="linear",
            use_bias=False)
        add(f"keras_{cell}_sigmoid", cell, (3, 4, 3, 2), activation="sigmoid")
        add(f"keras_{cell}_float32", cell, (2, 5, 3, 3), dtype="float32")
        add(f"keras_{cell}_float32_mask_backwards", cell, (3, 6, 3, 3), dtype="float32",
            mask="MASK_3x6", go_backwards=True)
    for cell in ("lstm", "gru"):
        # Larger weights so that many hard_sigmoid inputs fall outside [-3, 3].
        add(f"keras_{cell}_hard_sigmoid", cell, (2, 5, 3, 3),
            recurrent_activation="hard_sigmoid", weight_scale=1.5)
        add(f"keras_{cell}_relu_hard_sigmoid_mask", cell, (3, 6, 3, 2), activation="relu",
            recurrent_activation="hard_sigmoid", mask="MASK_3x6", weight_scale=1.2)
    # GRU with the reset gate applied before the recurrent product (Keras 2's default).
    add("keras_gru_reset_before", "gru", (2, 5, 3, 3), reset_after=False)
    add("keras_gru_reset_before_backwards", "gru", (2, 4, 3, 2), reset_after=False,
        go_backwards=True)
    add("keras_gru_reset_before_mask", "gru", (3, 6, 3, 3), reset_after=False,
        mask="MASK_3x6")
    add("keras_gru_reset_before_nobias_hard_sigmoid", "gru", (2, 5, 3, 4), reset_after=False,
        use_bias=False, recurrent_activation="hard_sigmoid", weight_scale=1.5)
    add("keras_gru_reset_before_relu_mask_backwards", "gru", (3, 6, 3, 2), reset_after=False,
        activation="relu", mask="MASK_3x6", go_backwards=True)
    add("keras_gru_reset_before_float32", "gru", (2, 5, 3, 3), reset_after=False,
        dtype="float32")
    add("keras_gru_nobias_float32", "gru", (2, 4, 3, 2), use_bias=False, dtype="float32")
    return cases


def torch_cases():
    """Options of the PyTorch cases. ``lengths`` gives per-sample valid lengths (the
    equivalent Keras mask is True on the first ``lengths[b]`` steps); ``flip`` runs torch on
    the time-reversed input, which is what Keras's go_backwards computes."""
    return [
        dict(name="torch_lstm", cell="lstm", shape=(3, 5, 3, 4)),
        dict(name="torch_lstm_lengths", cell="lstm", shape=(3, 6, 3, 3), lengths=(6, 2, 4)),
        dict(name="torch_lstm_flip", cell="lstm", shape=(2, 5, 3, 2), flip=True),
        dict(name="torch_gru", cell="gru", shape=(3, 5, 3, 4)),
        dict(name="torch_gru_lengths", cell="gru", shape=(3, 6, 3, 3), lengths=(3, 6, 1)),
        dict(name="torch_gru_flip", cell="gru", shape=(2, 4, 3, 3), flip=True),
        dict(name="torch_rnn_tanh", cell="simple_rnn", shape=(3, 5, 3, 4), activation="tanh"),
        dict(name="torch_rnn_relu", cell="simple_rnn", shape=(2, 6, 3, 3), activation="relu"),
        dict(name="torch_rnn_relu_lengths", cell="simple_rnn", shape=(3, 6, 3, 2),
             activation="relu", lengths=(4, 6, 2)),
        dict(name="torch_lstm_nobias", cell="lstm", shape=(2, 4, 3, 3), use_bias=False),
    ]


def case_seed(name):
    """A seed per case name, so adding a case leaves the others' data unchanged."""
    return zlib.crc32(name.encode())


def n_states(cell):
    return 2 if cell == "lstm" else 1


def random_inputs(rng, spec):
    """x, initial states and functional weights for a case (float64)."""
    batch, timesteps, features, units = spec["shape"]
    x = rng.standard_normal((batch, timesteps, features))
    states = [0.5 * rng.standard_normal((batch, units)) for _ in range(n_states(spec["cell"]))]
    w_out = rng.standard_normal((batch, timesteps, units))
    w_states = [rng.standard_normal((batch, units)) for _ in range(n_states(spec["cell"]))]
    return x, states, w_out, w_states


# --------------------------------------------------------------------------- Keras


def keras_case(spec, seed):
    import keras
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    dtype = spec["dtype"]
    batch, timesteps, features, units = spec["shape"]
    x, states, w_out, w_states = random_inputs(rng, spec)
    mask = globals()[spec["mask"]] if spec["mask"] else None
    if mask is not None:
        mask = mask[:batch, :timesteps]

    common = dict(return_sequences=True, return_state=True, go_backwards=spec["go_backwards"],
                  activation=spec["activation"], use_bias=spec["use_bias"], dtype=dtype)
    if spec["cell"] == "lstm":
        layer = keras.layers.LSTM(units, recurrent_activation=spec["recurrent_activation"],
                                  **common)
    elif spec["cell"] == "gru":
        layer = keras.layers.GRU(units, recurrent_activation=spec["recurrent_activation"],
                                 reset_after=spec["reset_after"], **common)
    else:
        layer = keras.layers.SimpleRNN(units, **common)
    layer.build((batch, timesteps, features))
    # Random weights large enough that gates are far from 0.5 and hard_sigmoid saturates
    # on some entries.
    weights = [spec["weight_scale"] * rng.standard_normal(w.shape)
               for w in layer.get_weights()]
    layer.set_weights([w.astype(dtype) for w in weights])

    x, w_out = x.astype(dtype), w_out.astype(dtype)
    states = [s.astype(dtype) for s in states]
    w_states = [w.astype(dtype) for w in w_states]
    tx = tf.constant(x)
    tstates = [tf.constant(s) for s in states]
    with tf.GradientTape() as tape:
        tape.watch([tx, *tstates])
        kwargs = {} if mask is None else {"mask": tf.constant(mask)}
        result = layer(tx, initial_state=list(tstates), **kwargs)
        outputs, finals = result[0], list(result[1:])
        loss = tf.reduce_sum(w_out * outputs)
        for w, s in zip(w_states, finals):
            loss = loss + tf.reduce_sum(w * s)
    variables = list(layer.trainable_weights)
    grads = tape.gradient(loss, [tx, *tstates, *variables])

    data = dict(x=x, outputs=outputs.numpy(), W_o=w_out, d_x=grads[0].numpy())
    names = ["kernel", "recurrent_kernel", "bias"][:len(variables)]
    for name, value in zip(names, layer.get_weights()):
        data[name] = value
    var_grads = grads[1 + len(states):]
    # trainable_weights and get_weights() share the order kernel, recurrent_kernel, bias.
    for name, g in zip(names, var_grads):
        data["d_" + name] = np.asarray(g)
    for k, state_name in enumerate(["h", "c"][:len(states)]):
        data[state_name + "0"] = states[k]
        data[state_name] = finals[k].numpy()
        data["W_" + state_name] = w_states[k]
        data["d_" + state_name + "0"] = grads[1 + k].numpy()
    if mask is not None:
        data["mask"] = mask
    return data


# --------------------------------------------------------------------------- PyTorch


def torch_case(spec, seed):
    import torch

    if spec.get("lengths") and spec.get("flip"):
        # Keras's go_backwards with a trailing mask is not a plain flip of a shorter run.
        raise ValueError("lengths and flip together are not supported")
    rng = np.random.default_rng(seed)
    batch, timesteps, features, units = spec["shape"]
    cell = spec["cell"]
    use_bias = spec.get("use_bias", True)
    x, states, w_out, w_states = random_inputs(rng, spec)
    torch.manual_seed(seed)
    if cell == "lstm":
        module = torch.nn.LSTM(features, units, batch_first=True, bias=use_bias)
    elif cell == "gru":
        module = torch.nn.GRU(features, units, batch_first=True, bias=use_bias)
    else:
        module = torch.nn.RNN(features, units, batch_first=True, bias=use_bias,
                              nonlinearity=spec["activation"])
    module = module.double()
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.from_numpy(0.6 * rng.standard_normal(tuple(p.shape))))

    tx = torch.tensor(x, requires_grad=True)
    tstates = [torch.tensor(s, requires_grad=True) for s in states]
    lengths = spec.get("lengths") or (timesteps,) * batch
    source = torch.flip(tx, dims=[1]) if spec.get("flip") else tx

    # One sample at a time, on its valid steps only: torch has no per-step mask. Keras's
    # output for a trailing masked step repeats the last valid output, so that is how the
    # sequence is padded back to full length.
    outputs, finals = [], [[] for _ in states]
    for b in range(batch):
        seq = source[b:b + 1, :lengths[b]]
        init = tuple(s[b:b + 1].unsqueeze(0) for s in tstates)
        out, fin = module(seq, init if cell == "lstm" else init[0])
        fin = fin if cell == "lstm" else (fin,)
        pad = out[:, -1:].expand(1, timesteps - lengths[b], units)
        outputs.append(torch.cat([out, pad], dim=1))
        for k, f in enumerate(fin):
            finals[k].append(f[0])
    outputs = torch.cat(outputs, dim=0)
    finals = [torch.cat(f, dim=0) for f in finals]
    loss = (torch.from_numpy(w_out) * outputs).sum()
    for w, f in zip(w_states, finals):
        loss = loss + (torch.from_numpy(w) * f).sum()
    loss.backward()

    p = dict(module.named_parameters())
    g = {name: param.grad.numpy() for name, param in p.items()}
    p = {name: param.detach().numpy() for name, param in p.items()}

    if cell == "gru":
        # torch rows r, z, n -> Keras columns z, r, h; torch's n uses r * (W_hn h + b_hn),
        # which is Keras's reset_after=True with the recurrent bias row.
        def reorder(a):
            r, z, n = np.split(a, 3, axis=0)
            return np.concatenate([z, r, n], axis=0)
    else:
        def reorder(a):  # LSTM i, f, g, o is Keras's i, f, c, o; RNN has one block
            return a

    data = dict(
        x=x, W_o=w_out, outputs=outputs.detach().numpy(), d_x=tx.grad.numpy(),
        kernel=reorder(p["weight_ih_l0"]).T.copy(),
        recurrent_kernel=reorder(p["weight_hh_l0"]).T.copy(),
        d_kernel=reorder(g["weight_ih_l0"]).T.copy(),
        d_recurrent_kernel=reorder(g["weight_hh_l0"]).T.copy(),
    )
    if use_bias:
        if cell == "gru":
            data["bias"] = np.stack([reorder(p["bias_ih_l0"]), reorder(p["bias_hh_l0"])])
            data["d_bias"] = np.stack([reorder(g["bias_ih_l0"]), reorder(g["bias_hh_l0"])])
        else:
            # The two torch biases are always summed, so either one's gradient is the
            # gradient of their sum.
            data["bias"] = reorder(p["bias_ih_l0"] + p["bias_hh_l0"])
            data["d_bias"] = reorder(g["bias_ih_l0"])
    for k, state_name in enumerate(["h", "c"][:len(states)]):
        data[state_name + "0"] = states[k]
        data[state_name] = finals[k].detach().numpy()
        data["W_" + state_name] = w_states[k]
        data["d_" + state_name + "0"] = tstates[k].grad.numpy()
    if spec.get("lengths"):
        data["mask"] = np.arange(timesteps)[None, :] < np.array(lengths)[:, None]
    return data


def torch_meta(spec):
    return dict(cell=spec["cell"], source="torch", dtype="float64",
                go_backwards=bool(spec.get("flip", False)),
                activation=spec.get("activation", "tanh"),
                recurrent_activation="sigmoid", use_bias=spec.get("use_bias", True),
                reset_after=True)


def main():
    import keras
    import tensorflow as tf
    import torch

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    torch.set_num_threads(1)
    keras.config.set_floatx("float64")

    arrays, meta = {}, {}
    for spec in keras_cases():
        data = keras_case(spec, case_seed(spec["name"]))
        meta[spec["name"]] = {k: spec[k] for k in ("cell", "source", "dtype", "go_backwards",
                                                   "activation", "recurrent_activation",
                                                   "use_bias", "reset_after")}
        for key, value in data.items():
            arrays[f"{spec['name']}/{key}"] = value
    for spec in torch_cases():
        data = torch_case(spec, case_seed(spec["name"]))
        meta[spec["name"]] = torch_meta(spec)
        for key, value in data.items():
            arrays[f"{spec['name']}/{key}"] = value
    for m in meta.values():
        if m["cell"] == "simple_rnn":
            m["recurrent_activation"] = None
        if m["cell"] != "gru":
            m["reset_after"] = None
    arrays["__meta__"] = meta_array(__file__, (keras, tf, torch), cases=meta)
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {len(meta)} cases, {len(arrays)} arrays to {OUT} "
          f"({os.path.getsize(OUT) / 1024:.1f} KiB)")


if __name__ == "__main__":
    main()
