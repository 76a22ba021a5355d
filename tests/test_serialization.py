import json
import zipfile

import numpy as np
import pytest

import crossent
from crossent import nn, optim
from crossent.serialization import ModelFileError


def _data(rng, n=200):
    X = rng.normal(size=(n, 6)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 1)
    return X, y


def test_round_trip_preserves_architecture_weights_and_predictions(tmp_path, rng):
    X, y = _data(rng)
    model = nn.MLP(6, [16, 8], 3, activation="tanh", seed=4)
    crossent.fit(model, X, y, epochs=2, progress=False)
    path = tmp_path / "model.npz"
    crossent.save(model, path, class_names=["a", "b", "c"], loss=crossent.get_loss("focal", gamma=1.5))
    checkpoint = crossent.load_checkpoint(path)
    loaded = checkpoint.model
    assert type(loaded) is type(model) and loaded.config() == model.config()
    for a, b in zip(model.parameters(), loaded.parameters()):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert checkpoint.class_names == ["a", "b", "c"]
    assert repr(checkpoint.loss()) == "FocalLoss(gamma=1.5)"
    # the arrays are plain .npy members of a zip: numpy can read the file too
    with np.load(path) as archive:
        assert any(name.startswith("parameters/") for name in archive.files)


def test_save_is_atomic_a_failed_write_leaves_the_old_file(tmp_path, rng, monkeypatch):
    model = nn.SoftmaxRegression(6, 3)
    path = tmp_path / "model.npz"
    crossent.save(model, path)
    before = path.read_bytes()

    def exploding(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np.lib.format, "write_array", exploding)
    with pytest.raises(OSError, match="disk full"):
        crossent.save(nn.SoftmaxRegression(6, 3, seed=9), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]  # no temporary file left behind


def test_resume_equals_uninterrupted_run(tmp_path, rng):
    X, y = _data(rng)

    def new_run():
        model = nn.MLP(6, [12], 3, dropout=0.2, seed=1)
        return model, optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)

    model, optimizer = new_run()
    crossent.fit(model, X, y, optimizer=optimizer, epochs=6, batch_size=16, seed=3, progress=False)

    first, first_optimizer = new_run()
    history = crossent.fit(first, X, y, optimizer=first_optimizer, epochs=3, batch_size=16, seed=3,
                           progress=False)
    path = tmp_path / "checkpoint.npz"
    crossent.save(first, path, optimizer=first_optimizer, training={"history": history.to_dict()})

    checkpoint = crossent.load_checkpoint(path)
    resumed = checkpoint.model
    resumed_optimizer = optim.SGD(resumed.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    resumed_optimizer.load_state_dict(checkpoint.optimizer_state)
    resumed_history = crossent.History.from_dict(checkpoint.training["history"])
    crossent.fit(resumed, X, y, optimizer=resumed_optimizer, epochs=6, batch_size=16, seed=3, progress=False,
                 history=resumed_history)
    assert len(resumed_history) == 6
    for a, b in zip(model.parameters(), resumed.parameters()):
        np.testing.assert_array_equal(a, b)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model file at"):
        crossent.load(tmp_path / "nope.npz")


def test_truncated_file(tmp_path):
    path = tmp_path / "model.npz"
    crossent.save(nn.SoftmaxRegression(6, 3), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="corrupt or truncated"):
        crossent.load(path)


def test_foreign_files(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ModelFileError, match="not a readable crossent model"):
        crossent.load(text)
    npz = tmp_path / "arrays.npz"
    np.savez(npz, a=np.zeros(3))
    with pytest.raises(ModelFileError, match="no metadata.json"):
        crossent.load(npz)
    other = tmp_path / "other.npz"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("metadata.json", json.dumps({"format": "something-else"}))
    with pytest.raises(ModelFileError, match="format is not 'crossent-model'"):
        crossent.load(other)


def test_newer_format_version_is_refused(tmp_path):
    path = tmp_path / "model.npz"
    crossent.save(nn.SoftmaxRegression(6, 3), path)
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    metadata = json.loads(members["metadata.json"])
    metadata["format_version"] = 99
    members["metadata.json"] = json.dumps(metadata).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(ModelFileError, match="format version 99.*upgrade crossent"):
        crossent.load(path)


def test_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        crossent.save(nn.SoftmaxRegression(6, 3), tmp_path / "missing" / "model.npz")
