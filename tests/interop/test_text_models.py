"""Issue 14's two text models, written in Keras with random weights, saved as .keras,
imported with ``graphspec import-keras`` (the CLI) and compared with Keras' predict on
left- and right-padded integer sequences (0 = padding): a masked LSTM classifier (and
its Bidirectional LSTM + masked mean variant) and a small Transformer encoder whose
padding mask reaches the attention and the mean pool. Agreement: the largest |diff|
relative to the largest |Keras output| below 1e-4, recorded for the session report."""
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import AGREEMENT

from graphspec import api
from graphspec.cli.keras_commands import import_keras as import_command
from graphspec.errors import InputError
from graphspec.interop.keras_import import import_keras

REL_TOL = 1e-4
VOCAB, STEPS, BATCH = 40, 12, 16


def padded(seed, side, steps=STEPS, batch=BATCH):
    """Token rows of random lengths 1..steps, zero-padded on ``side``; one row full."""
    rng = np.random.default_rng(seed)
    tokens = rng.integers(1, VOCAB, (batch, steps))
    lengths = rng.integers(1, steps + 1, batch)
    lengths[0] = steps
    for row, n in enumerate(lengths):
        if side == "right":
            tokens[row, n:] = 0
        else:
            tokens[row, :steps - n] = 0
    return tokens.astype("int32")


def lstm_classifier(keras, bidirectional):
    L = keras.layers
    tokens = keras.Input((None,), dtype="int32", name="tokens")
    x = L.Embedding(VOCAB, 16, mask_zero=True, name="embedding")(tokens)
    if bidirectional:
        x = L.Bidirectional(L.LSTM(16, return_sequences=True), name="bilstm")(x)
        x = L.GlobalAveragePooling1D(name="masked_mean")(x)
    else:
        x = L.LSTM(32, name="lstm")(x)
    name = "bilstm_classifier" if bidirectional else "lstm_classifier"
    return keras.Model(tokens, L.Dense(1, activation="sigmoid", name="score")(x), name=name)


def transformer_encoder(keras, blocks=2, pre_norm=True):
    """Token embedding (mask_zero) + position embedding, ``blocks`` encoder blocks
    (self-attention with the padding mask, residuals, LayerNormalization, gelu
    feed-forward), masked mean, classifier. The positions are an input of their own,
    1..n on the tokens and 0 on the padding, embedded with mask_zero too: Keras' Add
    keeps a mask only when both of its inputs have one."""
    L, d = keras.layers, 16
    tokens = keras.Input((STEPS,), dtype="int32", name="tokens")
    positions = keras.Input((STEPS,), dtype="int32", name="positions")
    x = L.Add(name="embed")([L.Embedding(VOCAB, d, mask_zero=True, name="token_embedding")(tokens),
                             L.Embedding(STEPS + 1, d, mask_zero=True,
                                         name="position_embedding")(positions)])
    for i in range(blocks):
        norm = (lambda t, n: L.LayerNormalization(epsilon=1e-6, name=f"{n}_{i}")(t))
        y = norm(x, "attention_norm") if pre_norm else x
        y = L.MultiHeadAttention(num_heads=2, key_dim=8, name=f"attention_{i}")(y, y)
        x = L.Add(name=f"attention_residual_{i}")([x, y])
        x = x if pre_norm else norm(x, "attention_norm")
        y = norm(x, "ff_norm") if pre_norm else x
        y = L.Dense(32, activation="gelu", name=f"ff_hidden_{i}")(y)
        x = L.Add(name=f"ff_residual_{i}")([x, L.Dense(d, name=f"ff_output_{i}")(y)])
        x = x if pre_norm else norm(x, "ff_norm")
    if pre_norm:
        x = L.LayerNormalization(epsilon=1e-6, name="final_norm")(x)
    x = L.GlobalAveragePooling1D(name="masked_mean")(x)
    out = L.Dense(3, activation="softmax", name="classes")(x)
    return keras.Model([tokens, positions], out, name="transformer_encoder")


def positions_of(tokens):
    return np.where(tokens != 0, np.arange(1, tokens.shape[1] + 1), 0).astype("int32")


def cli_import(path, tmp_path):
    spec, weights = tmp_path / f"{path.stem}.yaml", tmp_path / f"{path.stem}.npz"
    result = CliRunner().invoke(import_command, [str(path), "-o", str(spec),
                                                 "--weights-out", str(weights)])
    assert result.exit_code == 0, result.output
    graph = api.load(spec)
    graph.load_weights(weights)
    return graph


def agree(label, keras_model, graph, feeds_list):
    top = graph.model(keras_model.name)
    worst = worst_rel = 0.0
    for feeds in feeds_list:
        want = np.asarray(keras_model.predict(feeds if len(feeds) > 1 else feeds[0],
                                              verbose=0), np.float64)
        got = np.asarray(top.predict(dict(zip(top.input_names, feeds)))
                         [top.output_names[0]], np.float64)
        assert np.all(np.isfinite(got)) and got.shape == want.shape
        err = float(np.abs(got - want).max())
        worst, worst_rel = max(worst, err), max(worst_rel, err / float(np.abs(want).max()))
    AGREEMENT[label] = (worst, worst_rel)
    assert worst_rel < REL_TOL, f"{label}: max |diff| {worst:.3e}, relative {worst_rel:.3e}"
    return worst_rel


@pytest.mark.parametrize("bidirectional", [False, True])
def test_masked_lstm_text_classifier(keras, tmp_path, bidirectional):
    keras.utils.set_random_seed(7)
    model = lstm_classifier(keras, bidirectional)
    path = tmp_path / f"{model.name}.keras"
    model.save(path)
    graph = cli_import(path, tmp_path)
    assert graph.layers["embedding"].config["mask_zero"] is True
    right, left = padded(1, "right"), padded(2, "left")
    agree(f"{model.name} (masked, left/right padding)", model, graph, [[right], [left]])
    # the mask matters: the same weights without it give other scores
    text = (tmp_path / f"{model.name}.yaml").read_text()
    unmasked = api.loads(text.replace(", mask_zero: true", ""), seed=0)
    unmasked.set_weights({k: v.data for k, v in graph.weights().items()})
    assert not np.allclose(model.predict(right, verbose=0),
                           unmasked.model().predict({"tokens": right})["score"], atol=1e-3)


def test_transformer_encoder_with_padding_mask(keras, tmp_path):
    keras.utils.set_random_seed(8)
    model = transformer_encoder(keras)
    path = tmp_path / "transformer_encoder.keras"
    model.save(path)
    graph = cli_import(path, tmp_path)
    top = graph.model("transformer_encoder")
    masked = {n.layer.name: n.input_tensors[0].mask_source for n in top.nodes}
    assert masked["attention_0"] and masked["attention_1"] and masked["masked_mean"]
    feeds = [[t, positions_of(t)] for t in (padded(3, "right"), padded(4, "left"))]
    agree("transformer encoder (masked, left/right padding)", model, graph, feeds)


def test_post_norm_encoder_is_refused_where_keras_loses_the_mask(keras, tmp_path):
    """Keras 3.15's MultiHeadAttention deletes its inputs' masks when it runs, so in a
    post-norm encoder the residual Add after the first attention has no mask at run time
    and the second attention attends to padding; graphspec would mask it (as Keras does
    while building the model). The import refuses, naming both attention layers; one
    post-norm block, where nothing after the attention takes its mask at run time,
    imports and agrees."""
    keras.utils.set_random_seed(9)
    model = transformer_encoder(keras, blocks=2, pre_norm=False)
    path = tmp_path / "post_norm.keras"
    model.save(path)
    with pytest.raises(InputError, match=r"layer 'attention_1' runs without the mask of "
                                         r".* MultiHeadAttention 'attention_0' deletes"):
        import_keras(str(path))
    model = transformer_encoder(keras, blocks=1, pre_norm=False)
    model.save(path)
    graph = cli_import(path, tmp_path)
    feeds = [[t, positions_of(t)] for t in (padded(5, "right"), padded(6, "left"))]
    agree("post-norm encoder, one block (masked)", model, graph, feeds)


@pytest.mark.parametrize("which", ["lstm", "bilstm", "encoder"])
def test_imported_text_models_export_to_onnx(keras, tmp_path, which):
    """The imported text models carry their masks into ONNX (the recurrences, of a
    length known only at run time, as one Scan) and onnxruntime gives what predict
    gives on padded rows."""
    pytest.importorskip("onnxruntime")
    from graphspec.interop.onnx_check import check_against_predict
    from graphspec.interop.onnx_export import to_onnx
    keras.utils.set_random_seed(10)
    model = transformer_encoder(keras) if which == "encoder" else \
        lstm_classifier(keras, which == "bilstm")
    path = tmp_path / f"{which}.keras"
    model.save(path)
    graph = cli_import(path, tmp_path)
    top = graph.model(model.name)
    proto = to_onnx(top)
    tokens = np.concatenate([padded(11, "right", batch=4), padded(12, "left", batch=4)])
    feeds = [tokens, positions_of(tokens)] if which == "encoder" else [tokens]
    report = check_against_predict(top, proto, dict(zip(top.input_names, feeds)))
    assert all(r["ok"] for r in report.values()), report
