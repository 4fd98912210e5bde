"""Model-level benchmark: whole models' ``fit`` per epoch and ``predict``, end to end.

Three models, each written three times (crnn, Keras 3 on TensorFlow, and a hand-written
PyTorch training loop doing the same work: same layers, loss, optimizer settings, batch
size, shuffling), on data synthesized deterministically here (no downloads):

- ``charlstm``: the classic Keras char-level text model: one-hot windows of 40 characters
  over a 75-character alphabet -> ``LSTM(128)`` -> ``Dense(75, softmax)``, categorical
  crossentropy, RMSprop(learning_rate=0.01), batch 128.
- ``forecaster``: crnn's demo, a stateful ``LSTM(32, return_sequences=True)`` with batch 1
  and 12-step chunks -> ``TimeDistributed(Dense(1))``, MSE, Adam(0.005), ``shuffle=False``,
  states reset at the start of each epoch (and before ``predict``).
- ``bilstm``: ``Embedding(2001, 32, mask_zero=True)`` -> ``Bidirectional(LSTM(32))`` ->
  ``Dense(1, sigmoid)``, binary crossentropy, Adam, batch 64, on post-padded integer
  sequences of 10-80 tokens (PyTorch: ``padding_idx=0`` and packed sequences, which skip
  the padding as the Keras mask does).

``build(lib, name, scale)`` returns ``(fit_epoch, predict, info)``: two zero-argument
callables and a dict describing the data. ``scale`` shrinks the data for ``--quick``.
"""

import numpy as np

SEED = 1234
MODELS = ("charlstm", "forecaster", "bilstm")

CHAR_MAXLEN, CHAR_VOCAB, CHAR_UNITS, CHAR_BATCH, CHAR_SAMPLES = 40, 75, 128, 128, 2048
FC_CHUNK, FC_UNITS, FC_CHUNKS = 12, 32, 96
BI_VOCAB, BI_DIM, BI_UNITS, BI_MAXLEN, BI_BATCH, BI_SAMPLES = 2000, 32, 32, 80, 64, 2048


# --------------------------------------------------------------------------- data


def char_data(samples):
    """One-hot windows over a synthetic text: x (samples, 40, 75), y (samples, 75).

    The text is made of words from a fixed random lexicon (space = symbol 0), cut into
    40-character windows every 3 characters, as the Keras example does with Nietzsche.
    """
    rng = np.random.default_rng(SEED)
    lexicon = [rng.integers(1, CHAR_VOCAB, rng.integers(2, 9)) for _ in range(400)]
    pieces, length = [], 0
    need = 3 * samples + CHAR_MAXLEN + 1
    while length < need:
        word = lexicon[int(rng.zipf(1.3)) % len(lexicon)]
        pieces += [word, [0]]
        length += len(word) + 1
    text = np.concatenate(pieces)[:need]
    starts = np.arange(samples) * 3
    idx = text[starts[:, None] + np.arange(CHAR_MAXLEN)]
    nxt = text[starts + CHAR_MAXLEN]
    x = np.zeros((samples, CHAR_MAXLEN, CHAR_VOCAB), np.float32)
    x[np.arange(samples)[:, None], np.arange(CHAR_MAXLEN), idx] = 1.0
    y = np.zeros((samples, CHAR_VOCAB), np.float32)
    y[np.arange(samples), nxt] = 1.0
    return x, y, nxt.astype(np.int64)


def forecaster_data(chunks):
    """A seasonal series with trend and noise, in 12-step chunks: x, y (chunks, 12, 1)."""
    rng = np.random.default_rng(SEED)
    t = np.arange(chunks * FC_CHUNK + 1)
    series = np.sin(2 * np.pi * t / 12) + 0.01 * t + 0.1 * rng.standard_normal(t.size)
    series = (series - series.mean()) / series.std()
    x = series[:-1].reshape(chunks, FC_CHUNK, 1).astype(np.float32)
    y = series[1:].reshape(chunks, FC_CHUNK, 1).astype(np.float32)
    return x, y


def bilstm_data(samples):
    """Post-padded token ids x (samples, 80) int32, lengths, labels y (samples, 1)."""
    rng = np.random.default_rng(SEED)
    lengths = rng.integers(10, BI_MAXLEN + 1, samples)
    x = np.zeros((samples, BI_MAXLEN), np.int32)
    for i, n in enumerate(lengths):
        x[i, :n] = rng.integers(1, BI_VOCAB + 1, n)
    # Label: more low-id than high-id tokens (learnable, balanced).
    low = ((x > 0) & (x <= BI_VOCAB // 2)).sum(1)
    y = (2 * low > lengths).astype(np.float32)[:, None]
    return x, lengths, y


def _data(name, scale):
    if name == "charlstm":
        n = max(CHAR_BATCH, int(CHAR_SAMPLES * scale) // CHAR_BATCH * CHAR_BATCH)
        x, y, target = char_data(n)
        return dict(x=x, y=y, target=target, batch=CHAR_BATCH,
                    info=f"{n} windows of {CHAR_MAXLEN}x{CHAR_VOCAB}, batch {CHAR_BATCH}")
    if name == "forecaster":
        n = max(8, int(FC_CHUNKS * scale))
        x, y = forecaster_data(n)
        return dict(x=x, y=y, batch=1, info=f"{n} chunks of {FC_CHUNK} steps, batch 1")
    n = max(BI_BATCH, int(BI_SAMPLES * scale) // BI_BATCH * BI_BATCH)
    x, lengths, y = bilstm_data(n)
    return dict(x=x, y=y, lengths=lengths, batch=BI_BATCH,
                info=f"{n} sequences of 10-{BI_MAXLEN} tokens (post-padded), batch {BI_BATCH}")


# --------------------------------------------------------------------------- crnn / Keras


def _keras_like(lib, name, data):
    """The model in crnn or Keras: both take the same Keras-style code."""
    if lib == "crnn":
        import crnn
        from crnn import layers, optimizers

        crnn.utils.set_random_seed(SEED)
        Sequential = crnn.Sequential

        def inp(shape=None, batch_shape=None, dtype=None):
            return layers.Input(shape=shape, batch_shape=batch_shape, dtype=dtype)
    else:
        import keras
        from keras import layers, optimizers

        keras.utils.set_random_seed(SEED)
        Sequential = keras.Sequential

        def inp(shape=None, batch_shape=None, dtype=None):
            return keras.Input(shape=shape, batch_shape=batch_shape, dtype=dtype)

    if name == "charlstm":
        model = Sequential([inp(shape=(CHAR_MAXLEN, CHAR_VOCAB)), layers.LSTM(CHAR_UNITS),
                            layers.Dense(CHAR_VOCAB, activation="softmax")])
        model.compile(optimizer=optimizers.RMSprop(learning_rate=0.01),
                      loss="categorical_crossentropy")
        shuffle = True
    elif name == "forecaster":
        model = Sequential([inp(batch_shape=(1, FC_CHUNK, 1)),
                            layers.LSTM(FC_UNITS, stateful=True, return_sequences=True),
                            layers.TimeDistributed(layers.Dense(1))])
        model.compile(optimizer=optimizers.Adam(learning_rate=0.005), loss="mse")
        shuffle = False
    else:
        model = Sequential([inp(shape=(BI_MAXLEN,), dtype="int32"),
                            layers.Embedding(BI_VOCAB + 1, BI_DIM, mask_zero=True),
                            layers.Bidirectional(layers.LSTM(BI_UNITS)),
                            layers.Dense(1, activation="sigmoid")])
        model.compile(optimizer="adam", loss="binary_crossentropy")
        shuffle = True

    stateful = [layer for layer in model.layers if getattr(layer, "stateful", False)]

    def reset():
        for layer in stateful:
            layer.reset_states()

    x, y, batch = data["x"], data["y"], data["batch"]

    def fit_epoch():
        reset()
        return model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=shuffle)

    def predict():
        reset()
        return model.predict(x, batch_size=batch, verbose=0)

    return fit_epoch, predict


# --------------------------------------------------------------------------- PyTorch


def _torch(name, data):
    import torch
    from torch import nn

    torch.manual_seed(SEED)
    batch = data["batch"]
    gen = torch.Generator().manual_seed(SEED)

    if name == "charlstm":
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.lstm = nn.LSTM(CHAR_VOCAB, CHAR_UNITS, batch_first=True)
                self.dense = nn.Linear(CHAR_UNITS, CHAR_VOCAB)

            def forward(self, x):
                _, (h, _) = self.lstm(x)
                return self.dense(h[0])      # logits; softmax is inside the loss

        net = Net()
        # Keras RMSprop defaults: rho 0.9, epsilon 1e-7.
        opt = torch.optim.RMSprop(net.parameters(), lr=0.01, alpha=0.9, eps=1e-7)
        loss_fn = nn.CrossEntropyLoss()
        x = torch.from_numpy(data["x"])
        t = torch.from_numpy(data["target"])

        def fit_epoch():
            net.train()
            order = torch.randperm(len(x), generator=gen)
            for i in range(0, len(x), batch):
                idx = order[i:i + batch]
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(net(x[idx]), t[idx])
                loss.backward()
                opt.step()

        def predict():
            net.eval()
            with torch.inference_mode():
                return torch.cat([torch.softmax(net(x[i:i + batch]), -1)
                                  for i in range(0, len(x), batch)]).numpy()

        return fit_epoch, predict

    if name == "forecaster":
        lstm, dense = nn.LSTM(1, FC_UNITS, batch_first=True), nn.Linear(FC_UNITS, 1)
        params = list(lstm.parameters()) + list(dense.parameters())
        opt = torch.optim.Adam(params, lr=0.005, eps=1e-7)
        loss_fn = nn.MSELoss()
        x, y = torch.from_numpy(data["x"]), torch.from_numpy(data["y"])

        def fit_epoch():
            state = None                      # reset at the start of the epoch
            for i in range(len(x)):
                opt.zero_grad(set_to_none=True)
                out, state = lstm(x[i:i + 1], state)
                loss = loss_fn(dense(out), y[i:i + 1])
                loss.backward()
                opt.step()
                state = tuple(s.detach() for s in state)   # stateful: carry, no BPTT

        def predict():
            state, outs = None, []
            with torch.inference_mode():
                for i in range(len(x)):
                    out, state = lstm(x[i:i + 1], state)
                    outs.append(dense(out))
            return torch.cat(outs).numpy()

        return fit_epoch, predict

    class BiNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(BI_VOCAB + 1, BI_DIM, padding_idx=0)
            self.lstm = nn.LSTM(BI_DIM, BI_UNITS, batch_first=True, bidirectional=True)
            self.dense = nn.Linear(2 * BI_UNITS, 1)

        def forward(self, x, lengths):
            packed = nn.utils.rnn.pack_padded_sequence(self.embed(x), lengths,
                                                       batch_first=True, enforce_sorted=False)
            _, (h, _) = self.lstm(packed)
            return self.dense(torch.cat([h[0], h[1]], dim=1))   # logits

    net = BiNet()
    opt = torch.optim.Adam(net.parameters(), lr=0.001, eps=1e-7)
    loss_fn = nn.BCEWithLogitsLoss()
    x = torch.from_numpy(data["x"].astype(np.int64))
    lengths = torch.from_numpy(data["lengths"].astype(np.int64))
    y = torch.from_numpy(data["y"])

    def fit_epoch():
        net.train()
        order = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), batch):
            idx = order[i:i + batch]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(x[idx], lengths[idx]), y[idx])
            loss.backward()
            opt.step()

    def predict():
        net.eval()
        with torch.inference_mode():
            return torch.cat([torch.sigmoid(net(x[i:i + batch], lengths[i:i + batch]))
                              for i in range(0, len(x), batch)]).numpy()

    return fit_epoch, predict


def build(lib, name, scale=1.0):
    """``(fit_epoch, predict, info)`` for model ``name`` in ``lib`` (crnn, keras, torch)."""
    data = _data(name, scale)
    if lib == "torch":
        fit_epoch, predict = _torch(name, data)
    else:
        fit_epoch, predict = _keras_like(lib, name, data)
    return fit_epoch, predict, data["info"]
