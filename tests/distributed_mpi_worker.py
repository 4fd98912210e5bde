"""The MPI side of tests/test_distributed_mpi.py: run under ``mpiexec -n 2`` (or alone).

Usage: ``python distributed_mpi_worker.py OUT_DIR``. Every rank runs every scenario below
and writes what it saw to ``OUT_DIR/rank<r>.npz`` (arrays) and ``OUT_DIR/rank<r>.json``
(histories, error messages); the test compares them with single-process training.

The global data of a scenario is the same on every rank; rank r trains on the rows
``k*N*b + r*b ... k*N*b + (r+1)*b - 1`` of each global batch k of ``N*b`` rows, so the
per-step batches of all ranks, concatenated in rank order, are the global batches.
"""

import contextlib
import json
import os
import sys

import numpy as np

import crnn
import crnn.distributed as cd
from crnn import layers as L

B, STEPS, T, F = 3, 4, 5, 2      # per-rank batch, batches per epoch, timesteps, features


def global_data(n_ranks, seed, steps=STEPS, timesteps=T):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((steps * n_ranks * B, timesteps, F))
    y = rng.standard_normal((steps * n_ranks * B, 1))
    return x, y


def shard(array, rank, n_ranks):
    """This rank's rows of each global batch of ``n_ranks * B`` rows."""
    rows = [k * n_ranks * B + rank * B + j
            for k in range(array.shape[0] // (n_ranks * B)) for j in range(B)]
    return array[rows]


def build(seed, stateful=False, batch=B, timesteps=T):
    crnn.utils.set_random_seed(seed)
    first = (L.LSTM(4, stateful=True, batch_input_shape=(batch, timesteps, F), dtype="float64")
             if stateful else L.LSTM(4, input_shape=(timesteps, F), dtype="float64"))
    return crnn.Sequential([first, L.Dense(1, dtype="float64")])


def run_error(callable_):
    """The message of the ValueError ``callable_`` raises (None if it returns)."""
    try:
        callable_()
    except ValueError as error:
        return str(error)
    return None


def main(out):
    cd.init()
    r, n = cd.rank(), cd.size()
    arrays, info = {}, {"rank": r, "size": n}

    # Stateless: BroadcastWeights, validation data, EarlyStopping, metrics, checkpoint and
    # progress bar on rank 0 only. Rank 1 starts from other weights, so the broadcast matters.
    x, y = global_data(n, seed=1)
    vx, vy = global_data(n, seed=2, steps=2)
    model = build(seed=10 + r)
    arrays["stateless_initial"] = np.concatenate([w.ravel() for w in model.get_weights()])
    model.compile(optimizer=cd.DistributedOptimizer(crnn.optimizers.Adam(0.01)), loss="mse",
                  metrics=["mae"])
    checkpoint = os.path.join(out, f"rank{r}", "checkpoint.crnn")
    with open(os.path.join(out, f"stdout{r}.txt"), "w") as log, \
            contextlib.redirect_stdout(log):
        history = model.fit(
            shard(x, r, n), shard(y, r, n), batch_size=B, epochs=4, shuffle=False, verbose=2,
            validation_data=(shard(vx, r, n), shard(vy, r, n)),
            callbacks=[cd.BroadcastWeights(root_rank=0),
                       crnn.callbacks.EarlyStopping(monitor="val_loss", patience=1),
                       crnn.callbacks.ModelCheckpoint(checkpoint)])
    arrays["stateless_final"] = np.concatenate([w.ravel() for w in model.get_weights()])
    info["stateless_history"] = history.history

    # Stateful: rank r holds the global sample slots r*B .. (r+1)*B - 1.
    x, y = global_data(n, seed=3)
    model = build(seed=20, stateful=True)
    arrays["stateful_initial"] = np.concatenate([w.ravel() for w in model.get_weights()])
    model.compile(optimizer=cd.DistributedOptimizer("sgd"), loss="mse", metrics=["mae"])
    history = model.fit(shard(x, r, n), shard(y, r, n), epochs=2, verbose=0)
    arrays["stateful_final"] = np.concatenate([w.ravel() for w in model.get_weights()])
    arrays["stateful_states"] = np.concatenate(
        [s.ravel() for layer in model.layers for s in layer._state_arrays()])
    info["stateful_history"] = history.history

    # A callback stops training on rank 1 only, after its second batch: every rank stops
    # there (one collective decision), so none waits in an Allreduce the others skip.
    x, y = global_data(n, seed=8)
    model = build(seed=40)
    model.compile(optimizer=cd.DistributedOptimizer("sgd"), loss="mse")

    def stop_on_rank_1(batch, logs):
        if r == 1 and batch == 1:
            model.stop_training = True

    model.fit(shard(x, r, n), shard(y, r, n), batch_size=B, epochs=3, verbose=0,
              callbacks=[crnn.callbacks.LambdaCallback(on_train_batch_end=stop_on_rank_1)])
    info["stop_iterations"] = model.optimizer.iterations

    # Mismatches: every rank must raise, none may hang.
    def fit_with(x, y, stateful=False):
        model = build(seed=30, stateful=stateful)
        model.compile(optimizer=cd.DistributedOptimizer("sgd"), loss="mse")
        return lambda: model.fit(x, y, batch_size=None if stateful else B, verbose=0)

    extra = B if r == 1 else 0        # one more batch on rank 1
    x, y = global_data(n, seed=4, steps=STEPS + 1)
    info["error_steps"] = run_error(fit_with(x[:STEPS * B + extra], y[:STEPS * B + extra]))
    x, y = global_data(n, seed=5, timesteps=T + r)   # 5 timesteps on rank 0, 6 on rank 1
    info["error_shape"] = run_error(fit_with(x[:STEPS * B], y[:STEPS * B]))
    count = STEPS * B + (1 if r == 1 else 0)          # not divisible by B on rank 1 only
    x, y = global_data(n, seed=6, steps=STEPS + 1)
    info["error_stateful"] = run_error(fit_with(x[:count], y[:count], stateful=True))
    other = crnn.Sequential([L.Dense(2 + r, input_shape=(3,))])
    info["error_broadcast"] = run_error(lambda: cd.broadcast_weights(other))

    np.savez(os.path.join(out, f"rank{r}.npz"), **arrays)
    with open(os.path.join(out, f"rank{r}.json"), "w") as f:
        json.dump(info, f)


if __name__ == "__main__":
    main(sys.argv[1])
