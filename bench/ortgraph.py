"""ONNX graphs of crnn's cells, built with ``onnx.helper`` from Keras-layout weights.

The ONNX operators (LSTM, GRU, RNN) keep their weights per gate, transposed, in their own
gate order; these functions convert crnn's (Keras's) layout so that both engines compute
the same function from the same numbers, which the benchmark checks before it times.

- LSTM: Keras gates i, f, c, o (kernel (F, 4H)) -> ONNX i, o, f, c (W (1, 4H, F)).
- GRU: Keras z, r, h with ``reset_after=True`` and bias (2, 3H) -> ONNX z, r, h with
  ``linear_before_reset=1`` and B = [input bias, recurrent bias].
- SimpleRNN (tanh) -> the ONNX RNN operator (tanh is its default activation).
"""

import numpy as np

OPSET = 17
IR_VERSION = 8     # what onnxruntime 1.1x-1.3x all read
OP = {"lstm": "LSTM", "gru": "GRU", "simple_rnn": "RNN"}
GATES = {"lstm": 4, "gru": 3, "simple_rnn": 1}


def onnx_weights(cell, kernel, recurrent_kernel, bias):
    """(W, R, B) in the ONNX operator's layout, float32, one direction."""
    units = recurrent_kernel.shape[0]
    if cell == "lstm":
        blocks = [slice(g * units, (g + 1) * units) for g in (0, 3, 1, 2)]  # i, o, f, c

        def perm(a):
            return np.concatenate([a[..., b] for b in blocks], axis=-1)

        w, r = perm(kernel).T, perm(recurrent_kernel).T
        b = np.concatenate([perm(bias), np.zeros(4 * units, bias.dtype)])
    elif cell == "gru":
        w, r = kernel.T, recurrent_kernel.T
        b = np.concatenate([bias[0], bias[1]])
    else:
        w, r = kernel.T, recurrent_kernel.T
        b = np.concatenate([bias, np.zeros(units, bias.dtype)])
    f32 = np.float32
    return (np.ascontiguousarray(w[None], f32), np.ascontiguousarray(r[None], f32),
            np.ascontiguousarray(b[None], f32))


def _rnn_node(cell, units, inputs, outputs):
    from onnx import helper

    attrs = {"hidden_size": units}
    if cell == "gru":
        attrs["linear_before_reset"] = 1
    return helper.make_node(OP[cell], inputs, outputs, **attrs)


def _model(nodes, inputs, outputs, initializers, name):
    from onnx import helper

    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="crnn-bench")
    model.ir_version = IR_VERSION
    return model.SerializeToString()


def sequence_model(cell, kernel, recurrent_kernel, bias):
    """Serialized model: x (B, T, F) -> y (B, T, H), all steps, zero initial states."""
    from onnx import TensorProto, helper, numpy_helper

    units = recurrent_kernel.shape[0]
    w, r, b = onnx_weights(cell, kernel, recurrent_kernel, bias)
    inits = [numpy_helper.from_array(w, "W"), numpy_helper.from_array(r, "R"),
             numpy_helper.from_array(b, "B"),
             numpy_helper.from_array(np.array([1], np.int64), "axis1")]
    nodes = [
        helper.make_node("Transpose", ["x"], ["x_tbf"], perm=[1, 0, 2]),
        _rnn_node(cell, units, ["x_tbf", "W", "R", "B"], ["Y"]),
        helper.make_node("Squeeze", ["Y", "axis1"], ["Y_tbh"]),
        helper.make_node("Transpose", ["Y_tbh"], ["y"], perm=[1, 0, 2]),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", "T", kernel.shape[0]])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", "T", units])
    return _model(nodes, [x], [y], inits, f"{cell}_sequence")


def step_model(cell, kernel, recurrent_kernel, bias, dense_kernel, dense_bias):
    """Serialized model of one step of cell + Dense, states passed in and out.

    Inputs ``x`` (N, F), ``h`` (1, N, H) and, for LSTM, ``c`` (1, N, H); outputs ``y``
    (N, outputs), ``h_out`` and ``c_out`` in the same shapes as the states.
    """
    from onnx import TensorProto, helper, numpy_helper

    units, features = recurrent_kernel.shape[0], kernel.shape[0]
    w, r, b = onnx_weights(cell, kernel, recurrent_kernel, bias)
    inits = [numpy_helper.from_array(w, "W"), numpy_helper.from_array(r, "R"),
             numpy_helper.from_array(b, "B"),
             numpy_helper.from_array(np.ascontiguousarray(dense_kernel, np.float32), "Wd"),
             numpy_helper.from_array(np.ascontiguousarray(dense_bias, np.float32), "bd"),
             numpy_helper.from_array(np.array([0], np.int64), "axis0")]
    lstm = cell == "lstm"
    rnn_in = ["x1", "W", "R", "B", "", "h"] + (["c"] if lstm else [])
    rnn_out = ["", "h_out"] + (["c_out"] if lstm else [])
    nodes = [
        helper.make_node("Unsqueeze", ["x", "axis0"], ["x1"]),
        _rnn_node(cell, units, rnn_in, rnn_out),
        helper.make_node("Squeeze", ["h_out", "axis0"], ["h2"]),
        helper.make_node("Gemm", ["h2", "Wd", "bd"], ["y"]),
    ]
    state = ["1", "N", units]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", features]),
              helper.make_tensor_value_info("h", TensorProto.FLOAT, state)]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT,
                                             ["N", dense_kernel.shape[1]]),
               helper.make_tensor_value_info("h_out", TensorProto.FLOAT, state)]
    if lstm:
        inputs.append(helper.make_tensor_value_info("c", TensorProto.FLOAT, state))
        outputs.append(helper.make_tensor_value_info("c_out", TensorProto.FLOAT, state))
    # ONNX shape "1" must be an int for the leading state axis.
    for value in inputs[1:] + outputs[1:]:
        value.type.tensor_type.shape.dim[0].ClearField("dim_param")
        value.type.tensor_type.shape.dim[0].dim_value = 1
    return _model(nodes, inputs, outputs, inits, f"{cell}_step")


def matmul_model(n):
    """Serialized model: a (n, n) @ b (n, n), float32."""
    from onnx import TensorProto, helper

    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [n, n])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, [n, n])
    c = helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])
    return _model([helper.make_node("MatMul", ["a", "b"], ["c"])], [a, b], [c], [], "matmul")


def session(model_bytes, threads):
    """An ONNX Runtime CPU session: intra-op threads = ``threads``, inter-op 1, sequential."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(model_bytes, sess_options=options,
                                providers=["CPUExecutionProvider"])
