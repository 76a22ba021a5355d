"""ONNX export: exported graphs run in ONNX Runtime and give the model's own logits, probabilities and labels."""

import io
import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")

import crossent  # noqa: E402
from crossent import export_onnx, fit, load_checkpoint, save  # noqa: E402
from crossent.cli import main  # noqa: E402
from crossent.datasets import Normalizer, load_digits  # noqa: E402
from crossent.nn import MLP, LargeMarginSoftmaxClassifier, LogisticRegression, SoftmaxRegression  # noqa: E402
from crossent.onnx_export import DEFAULT_OPSET, MIN_OPSET  # noqa: E402

TOLERANCE = {"rtol": 1e-5, "atol": 1e-5}  # float32 arithmetic in a different order (ORT's Gemm, exp)
BATCH_SIZES = (1, 7)


def run_onnx(path, X):
    """{output name: array} from ONNX Runtime on the CPU."""
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(None, {"input": np.asarray(X, dtype=np.float32)})))


def exported(model, path, **options):
    """``path`` after writing ``model`` to it."""
    export_onnx(model, path, **options)
    return path


def assert_matches_model(outputs, model, X):
    """The graph's outputs against forward / predict_proba / predict of the crossent model."""
    np.testing.assert_allclose(outputs["logits"], model.forward(X), **TOLERANCE)
    np.testing.assert_allclose(outputs["probabilities"], model.predict_proba(X), **TOLERANCE)
    assert outputs["probabilities"].dtype == np.float32
    if isinstance(model, LogisticRegression):
        assert "label" not in outputs
    else:
        assert outputs["label"].dtype == np.int64
        np.testing.assert_array_equal(outputs["label"], model.predict(X))


RANDOM_MODELS = {
    "softmax": lambda: SoftmaxRegression(5, 3, init="xavier", seed=1),
    "logistic-binary": lambda: LogisticRegression(5, 1, init="xavier", seed=2),
    "logistic-multilabel": lambda: LogisticRegression(5, 4, init="xavier", seed=3),
    "mlp-relu": lambda: MLP(5, [8, 6], 3, activation="relu", seed=4),
    "mlp-tanh": lambda: MLP(5, [8], 4, activation="tanh", seed=5),
    "mlp-sigmoid": lambda: MLP(5, [6, 6], 3, activation="sigmoid", seed=6),
    "mlp-dropout": lambda: MLP(5, [8, 8], 3, dropout=0.5, seed=7),
    "mlp-no-hidden": lambda: MLP(5, [], 3, seed=8),
    "mlp-float64": lambda: MLP(5, [8], 3, activation="tanh", seed=9, dtype=np.float64),
    # L-Softmax predicts with its plain, bias-free scores
    "large-margin": lambda: LargeMarginSoftmaxClassifier(5, 3, margin=3, hidden_sizes=[8], seed=10),
    "large-margin-linear": lambda: LargeMarginSoftmaxClassifier(5, 4, margin=2, seed=11),
}


def _randomise_biases(model, rng):
    # biases start at zero; nonzero biases make a Gemm that dropped its bias fail the comparison
    for name, parameter in zip(model.parameter_names(), model.parameters()):
        if name.endswith("bias"):
            parameter[...] = rng.normal(scale=0.5, size=parameter.shape)


@pytest.mark.parametrize("kind", list(RANDOM_MODELS))
def test_random_models_match_in_onnx_runtime_for_any_batch(kind, tmp_path, rng):
    model = RANDOM_MODELS[kind]()
    _randomise_biases(model, rng)
    path = tmp_path / f"{kind}.onnx"
    exported = export_onnx(model, path)
    assert onnx.load(str(path)).SerializeToString() == exported.SerializeToString()
    for batch in BATCH_SIZES:
        X = rng.normal(scale=2.0, size=(batch, 5)).astype(np.float32)
        outputs = run_onnx(path, X)
        assert outputs["logits"].shape == (batch, model.n_outputs)
        assert_matches_model(outputs, model, X)


def test_graph_interface_names_shapes_and_dynamic_batch(tmp_path):
    graph = export_onnx(MLP(5, [4], 3, dropout=0.2), tmp_path / "m.onnx").graph
    (graph_input,) = graph.input
    dims = graph_input.type.tensor_type.shape.dim
    assert graph_input.name == "input" and graph_input.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert dims[0].dim_param == "batch" and not dims[0].HasField("dim_value") and dims[1].dim_value == 5
    assert [output.name for output in graph.output] == ["logits", "probabilities", "label"]
    assert graph.output[2].type.tensor_type.elem_type == onnx.TensorProto.INT64
    # Dropout is the identity at inference: no node for it
    assert [node.op_type for node in graph.node] == ["Gemm", "Relu", "Gemm", "Softmax", "ArgMax"]

    binary = export_onnx(LogisticRegression(5), tmp_path / "b.onnx").graph
    assert [output.name for output in binary.output] == ["logits", "probabilities"]
    assert [d.dim_param or d.dim_value for d in binary.output[1].type.tensor_type.shape.dim] == ["batch"]


def test_metadata_records_model_class_names_and_opset(tmp_path):
    model = LogisticRegression(5, 1)
    exported = export_onnx(model, tmp_path / "m.onnx", class_names=["cat", "dog"])
    properties = {prop.key: prop.value for prop in exported.metadata_props}
    assert json.loads(properties["class_names"]) == ["cat", "dog"]
    assert json.loads(properties["crossent_model"]) == model.config()
    assert properties["normalizer"] == "none"
    assert exported.producer_name == "crossent" and exported.producer_version == crossent.__version__
    assert [(o.domain, o.version) for o in exported.opset_import] == [("", DEFAULT_OPSET)]


@pytest.mark.parametrize("opset", [MIN_OPSET, 15, DEFAULT_OPSET])
def test_older_opsets_run(opset, tmp_path, rng):
    model = LogisticRegression(5, 1, init="xavier", seed=0)
    _randomise_biases(model, rng)
    exported = export_onnx(model, tmp_path / "m.onnx", opset=opset)
    assert exported.opset_import[0].version == opset
    assert exported.ir_version == onnx.helper.find_min_ir_version_for(list(exported.opset_import))
    X = rng.normal(size=(7, 5)).astype(np.float32)
    assert_matches_model(run_onnx(tmp_path / "m.onnx", X), model, X)


def test_newest_opset_of_installed_onnx_passes_the_checker(tmp_path):
    newest = onnx.defs.onnx_opset_version()
    exported = export_onnx(SoftmaxRegression(3, 2), tmp_path / "m.onnx", opset=np.int64(newest))
    assert exported.opset_import[0].version == newest


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def _trained(model, X, y):
    fit(model, X, y, optimizer="momentum", epochs=2, batch_size=64, seed=0, progress=False)
    return model


@pytest.mark.parametrize("kind", ["softmax", "logistic-binary", "logistic-multilabel", "mlp-tanh", "mlp-dropout"])
def test_models_trained_on_digits_match(kind, digits, tmp_path):
    X_train, y_train, X_test, y_test = digits
    if kind == "softmax":
        model = _trained(SoftmaxRegression(64, 10), X_train, y_train)
    elif kind == "logistic-binary":
        model = _trained(LogisticRegression(64, 1), X_train, (y_train == 3).astype(np.int64))
    elif kind == "logistic-multilabel":
        model = _trained(LogisticRegression(64, 10), X_train, np.eye(10, dtype=np.float32)[y_train])
    elif kind == "mlp-tanh":
        model = _trained(MLP(64, [32], 10, activation="tanh"), X_train, y_train)
    else:
        model = _trained(MLP(64, [32, 16], 10, dropout=0.3), X_train, y_train)
    outputs = run_onnx(exported(model, tmp_path / "m.onnx"), X_test)
    assert_matches_model(outputs, model, X_test)
    if kind in ("softmax", "mlp-tanh"):
        assert (outputs["label"] == y_test).mean() > 0.5  # trained, not a model of zeros


@pytest.fixture(scope="module")
def saved_with_normalizer(tmp_path_factory):
    """An MLP trained on raw digits (0..16) behind a standardizing Normalizer, saved with it."""
    X_train, y_train, X_test, _ = load_digits(normalize="none")
    normalizer = Normalizer("standardize").fit(X_train)
    model = _trained(MLP(64, [16], 10), normalizer.transform(X_train), y_train)
    path = tmp_path_factory.mktemp("saved") / "digits.npz"
    save(model, path, class_names=[f"digit {d}" for d in range(10)], normalizer=normalizer)
    return path, X_test[:40]


def test_cli_export_bakes_the_normalizer_in(saved_with_normalizer, tmp_path, capsys):
    model_file, X_raw = saved_with_normalizer
    out = tmp_path / "digits.onnx"
    assert main(["export", str(model_file), str(out)]) == 0
    assert "standardize" in capsys.readouterr().out
    checkpoint = load_checkpoint(model_file)
    normalizer = Normalizer.from_state(checkpoint.metadata["normalizer"])
    outputs = run_onnx(out, X_raw)
    # the graph takes raw features and gives what the model gives on normalised ones
    assert_matches_model(outputs, checkpoint.model, normalizer.transform(X_raw))
    assert not np.allclose(outputs["probabilities"], checkpoint.model.predict_proba(X_raw), atol=1e-3)
    properties = {prop.key: prop.value for prop in onnx.load(str(out)).metadata_props}
    assert json.loads(properties["class_names"]) == checkpoint.class_names
    assert properties["normalizer"] == "standardize"

    # end to end: `crossent predict` on the same raw rows prints the same probabilities
    np.savez(tmp_path / "rows.npz", X=X_raw)
    assert main(["predict", str(model_file), str(tmp_path / "rows.npz"), "--all",
                 "--output", str(tmp_path / "p.csv")]) == 0
    predicted = np.loadtxt(tmp_path / "p.csv", delimiter=",", skiprows=1, usecols=range(2, 12))
    np.testing.assert_allclose(outputs["probabilities"], predicted, rtol=1e-5, atol=1e-7)


def test_library_export_of_a_checkpoint_and_explicit_normalizer(saved_with_normalizer, tmp_path, rng):
    model_file, X_raw = saved_with_normalizer
    checkpoint = load_checkpoint(model_file)
    from_checkpoint = run_onnx(exported(checkpoint, tmp_path / "a.onnx"), X_raw)
    explicit = run_onnx(exported(checkpoint.model, tmp_path / "b.onnx",
                                 normalizer=checkpoint.metadata["normalizer"]), X_raw)
    np.testing.assert_array_equal(from_checkpoint["probabilities"], explicit["probabilities"])

    # a "unit" Normalizer object; a "none" one adds no node
    model = SoftmaxRegression(5, 3, init="xavier", seed=0)
    X = rng.uniform(0, 255, size=(7, 5)).astype(np.float32)
    unit = Normalizer("unit").fit(rng.uniform(0, 255, size=(20, 5)))
    assert_matches_model(run_onnx(exported(model, tmp_path / "u.onnx", normalizer=unit), X), model,
                         unit.transform(X))
    plain = export_onnx(model, tmp_path / "n.onnx", normalizer=Normalizer("none"))
    assert [node.op_type for node in plain.graph.node] == ["Gemm", "Softmax", "ArgMax"]


def test_a_failed_export_leaves_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"previous")

    def reject(*args, **kwargs):
        raise onnx.checker.ValidationError("rejected")

    monkeypatch.setattr(onnx.checker, "check_model", reject)
    with pytest.raises(onnx.checker.ValidationError):
        export_onnx(SoftmaxRegression(3, 2), path)
    assert path.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_importing_crossent_does_not_import_onnx():
    code = ("import sys, crossent, crossent.cli; crossent.cli.build_parser(); "
            "print('onnx' in sys.modules, 'onnxruntime' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]


def test_missing_onnx_says_how_to_install(tmp_path, monkeypatch, capsys):
    model_file = tmp_path / "m.npz"
    save(SoftmaxRegression(3, 2), model_file)
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'crossent\[onnx\]'"):
        export_onnx(SoftmaxRegression(3, 2), tmp_path / "m.onnx")
    assert main(["export", str(model_file), str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'crossent[onnx]'" in err
    assert not (tmp_path / "m.onnx").exists()


def _unknown_model_file(path):
    save(SoftmaxRegression(3, 2), path)
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    metadata = json.loads(members["metadata.json"])
    metadata["model"]["class"] = "Perceptron"
    members["metadata.json"] = json.dumps(metadata).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    path.write_bytes(buffer.getvalue())


@pytest.mark.parametrize("case,message", [
    ("missing", "no model file"),
    ("wrong-extension", "must end in .onnx"),
    ("not-a-model", "not a readable crossent model"),
    ("unknown-model", "Perceptron"),
    ("bad-opset", "opset must be in [13,"),
    ("missing-directory", "does not exist"),
])
def test_cli_errors_are_one_line_and_exit_2(case, message, tmp_path, capsys):
    model_file, out = tmp_path / "m.npz", tmp_path / "m.onnx"
    extra = []
    if case == "wrong-extension":
        save(SoftmaxRegression(3, 2), model_file)
        out = tmp_path / "m.txt"
    elif case == "not-a-model":
        model_file.write_bytes(b"not a zip archive")
    elif case == "unknown-model":
        _unknown_model_file(model_file)
    elif case == "bad-opset":
        save(SoftmaxRegression(3, 2), model_file)
        extra = ["--opset", "12"]
    elif case == "missing-directory":
        save(SoftmaxRegression(3, 2), model_file)
        out = tmp_path / "absent" / "m.onnx"
    assert main(["export", str(model_file), str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("crossent export: error:") and message in err
    assert not out.exists()


def test_bad_arguments_are_clear(tmp_path):
    model, path = MLP(4, [3], 2), tmp_path / "m.onnx"
    for not_a_model in ({"class": "MLP"}, MLP, None, Normalizer()):
        with pytest.raises(TypeError, match="model must be a crossent.nn SoftmaxRegression"):
            export_onnx(not_a_model, path)
    with pytest.raises(TypeError, match="path must be a str or os.PathLike"):
        export_onnx(model, 3)
    with pytest.raises(ValueError, match=r"path must end in \.onnx, got '.*m\.npz'"):
        export_onnx(model, tmp_path / "m.npz")
    (tmp_path / "dir.onnx").mkdir()
    with pytest.raises(ValueError, match="is a directory"):
        export_onnx(model, tmp_path / "dir.onnx")
    for opset in ("17", 17.0, True):
        with pytest.raises(TypeError, match="opset must be an integer or None"):
            export_onnx(model, path, opset=opset)
    for opset in (MIN_OPSET - 1, onnx.defs.onnx_opset_version() + 1):
        with pytest.raises(ValueError, match=f"opset must be in \\[{MIN_OPSET}, .*got {opset}"):
            export_onnx(model, path, opset=opset)
    with pytest.raises(TypeError, match="class_names must be a sequence"):
        export_onnx(model, path, class_names="ab")
    with pytest.raises(ValueError, match="class_names must name the model's 2 classes, got 3"):
        export_onnx(model, path, class_names=["a", "b", "c"])
    with pytest.raises(ValueError, match="class_names must name the model's 4 classes, got 2"):
        export_onnx(LogisticRegression(4, 4), path, class_names=["a", "b"])
    with pytest.raises(TypeError, match="normalizer must be a crossent.datasets.Normalizer"):
        export_onnx(model, path, normalizer=np.ones(4))
    with pytest.raises(ValueError, match="fitted on 5 features but the model takes 4"):
        export_onnx(model, path, normalizer=Normalizer().fit(np.arange(10.0).reshape(2, 5)))
    with pytest.raises(ValueError, match="is not fitted"):
        export_onnx(model, path, normalizer=Normalizer("standardize"))
    assert not path.exists()
