"""crossent.distributed: gradient sums over row chunks, on one machine and on a dask cluster.

The reference for every sum is the in-memory computation on the whole NumPy
array (``model.loss_and_backward``, ``crossent.fit``), which the rest of the
suite holds to naive loops and PyTorch.
"""

import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

pytest.importorskip("dask.distributed")

import dask.array as da  # noqa: E402

import crossent  # noqa: E402
from crossent import nn  # noqa: E402
from crossent.distributed import (  # noqa: E402
    GradientSums,
    fit_full_batch,
    fit_minibatch,
    gradient_sums,
    loss_and_gradient,
    write_chunks,
)
from crossent.losses import CrossEntropyLoss, FocalLoss  # noqa: E402

CLASS_WEIGHT = np.array([1.0, 2.5, 0.5])


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    # ":0": a free port; the default 8787 may be held by another cluster on the machine, whose warning is an error here
    cluster = LocalCluster(n_workers=2, processes=True, threads_per_worker=1, memory_limit="512MiB",
                           dashboard_address=":0")
    client = Client(cluster)
    yield client
    client.close()
    cluster.close()


def _blobs(n=600, n_features=5, n_classes=3, seed=0, spread=1.0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(n_classes, n_features)) * 2
    y = rng.integers(0, n_classes, n)
    X = centers[y] + rng.normal(size=(n, n_features)) * spread
    return X, y, rng.uniform(0.2, 3.0, n)


def _models():
    return {
        "softmax": lambda: nn.SoftmaxRegression(5, 3, init="xavier", seed=3, dtype=np.float64),
        "mlp": lambda: nn.MLP(5, [7], 3, activation="tanh", seed=3, dtype=np.float64),
    }


def _in_memory(model, X, y, loss, sample_weight=None, alpha=0.0):
    value = float(model.loss_and_backward(X, y, loss, sample_weight=sample_weight))
    gradients = [g.copy() for g in model.gradients()]
    for index, name in enumerate(model.parameter_names()):
        if name.endswith("weight") and alpha:
            value += 0.5 * alpha * float(np.sum(model.parameters()[index] ** 2))
            gradients[index] += alpha * model.parameters()[index]
    return value, gradients


def _assert_same(actual, expected, rtol=1e-12, atol=1e-14):
    assert len(actual) == len(expected)
    for a, b in zip(actual, expected):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def _data_kinds(tmp_path, X, y, w, kind):
    """(X, y, sample_weight) as the given kind of storage, all holding the same rows."""
    if kind == "numpy":
        return X, y, w
    if kind == "dask":
        return da.from_array(X, chunks=(170, -1)), da.from_array(y, chunks=250), da.from_array(w, chunks=100)
    if kind == "memmap":
        np.save(tmp_path / "X.npy", X)
        return np.load(tmp_path / "X.npy", mmap_mode="r"), y, w
    if kind == "npy path":
        for name, array in (("X", X), ("y", y), ("w", w)):
            np.save(tmp_path / f"{name}.npy", array)
        return str(tmp_path / "X.npy"), tmp_path / "y.npy", tmp_path / "w.npy"
    if kind == "zarr":
        zarr = pytest.importorskip("zarr")
        array = zarr.create_array(str(tmp_path / "X.zarr"), shape=X.shape, chunks=(128, X.shape[1]), dtype=X.dtype)
        array[:] = X
        return array, y, w
    if kind == "directory":
        assert write_chunks(tmp_path / "chunks", X, y, w, rows_per_file=233) == 3
        return tmp_path / "chunks", None, None
    raise AssertionError(kind)


KINDS = ["numpy", "dask", "memmap", "npy path", "zarr", "directory"]


# ------------------------------------------------------------------ the kernel and its sums


def test_chunk_sums_add_up_to_the_whole():
    """S, D and G of two halves add up to those of the whole; the mean divides once."""
    X, y, w = _blobs(n=40)
    model = _models()["mlp"]()
    loss = CrossEntropyLoss(weight=CLASS_WEIGHT)
    config, parameters = model.config(), model.parameters()
    whole = gradient_sums(parameters, config, loss, X, y, w)
    halves = (gradient_sums(parameters, config, loss, X[:13], y[:13], w[:13])
              + gradient_sums(parameters, config, loss, X[13:], y[13:], w[13:]))
    assert isinstance(halves, GradientSums) and halves.n_rows == 40
    np.testing.assert_allclose(halves.loss_sums, whole.loss_sums, rtol=1e-13)
    # D by hand: sum of sample weight times the class weight of the row's label
    np.testing.assert_allclose(halves.denominators, [np.sum(w * CLASS_WEIGHT[y])], rtol=1e-13)
    value, _, gradient = halves.mean([1.0], [True])
    expected_value, expected_gradient = _in_memory(model, X, y, loss, w)
    assert value == pytest.approx(expected_value, rel=1e-13)
    _assert_same(gradient, expected_gradient)


def test_rows_selects_and_orders_rows():
    X, y, w = _blobs(n=30)
    model = _models()["softmax"]()
    rows = np.array([7, 2, 2, 29])
    loss = CrossEntropyLoss()
    picked = gradient_sums(model.parameters(), model.config(), loss, X, y, w, rows=rows)
    direct = gradient_sums(model.parameters(), model.config(), loss, X[rows], y[rows], w[rows])
    np.testing.assert_array_equal(picked.loss_sums, direct.loss_sums)
    _assert_same(picked.gradients[0], direct.gradients[0], rtol=0, atol=0)


def test_non_finite_x_is_reported_with_its_global_row():
    X, y, _ = _blobs(n=30)
    X[21, 3] = np.nan
    with pytest.raises(ValueError, match="X must be finite; found nan at row 21, column 3"):
        loss_and_gradient(_models()["softmax"](), X, y, block_rows=8)


# ------------------------------------------------------------------ full batch: every storage, with and without dask


@pytest.mark.parametrize("model_name", ["softmax", "mlp"])
@pytest.mark.parametrize("kind", KINDS)
def test_loss_and_gradient_equals_in_memory_without_a_cluster(tmp_path, monkeypatch, kind, model_name):
    # a dask array then runs block by block in this process even while the module's cluster is up
    monkeypatch.setattr("crossent.distributed._default_client", lambda: None)
    X, y, w = _blobs()
    model = _models()[model_name]()
    loss = CrossEntropyLoss(weight=CLASS_WEIGHT)
    expected_value, expected_gradient = _in_memory(_models()[model_name](), X, y, loss, w, alpha=0.01)
    data = _data_kinds(tmp_path, X, y, w, kind)
    value, gradient = loss_and_gradient(model, *data[:2], sample_weight=data[2], loss=loss, alpha=0.01,
                                        block_rows=97)
    assert value == pytest.approx(expected_value, rel=1e-12)
    _assert_same(gradient, expected_gradient)


@pytest.mark.parametrize("kind, model_name", [("dask", "softmax")] + [(kind, "mlp") for kind in KINDS])
def test_loss_and_gradient_equals_in_memory_on_a_cluster(client, tmp_path, kind, model_name):
    X, y, w = _blobs()
    model = _models()[model_name]()
    loss = CrossEntropyLoss(weight=CLASS_WEIGHT)
    expected_value, expected_gradient = _in_memory(_models()[model_name](), X, y, loss, w)
    data = _data_kinds(tmp_path, X, y, w, kind)
    value, gradient = loss_and_gradient(model, *data[:2], sample_weight=data[2], loss=loss, client=client,
                                        block_rows=150)
    assert value == pytest.approx(expected_value, rel=1e-12)
    _assert_same(gradient, expected_gradient)


def test_a_weighted_sum_of_losses_divides_each_term_by_its_own_denominator(client):
    X, y, w = _blobs(n=200)
    # the focal term divides by sum(w) alone, the cross-entropy term by sum(w * class weight)
    loss = CrossEntropyLoss(weight=CLASS_WEIGHT) + 0.5 * FocalLoss(gamma=2.0)
    expected_value, expected_gradient = _in_memory(_models()["mlp"](), X, y, loss, w)
    value, gradient = loss_and_gradient(_models()["mlp"](), da.from_array(X, chunks=(64, -1)), y, loss=loss,
                                        sample_weight=w, client=client)
    assert value == pytest.approx(expected_value, rel=1e-12)
    _assert_same(gradient, expected_gradient)


def test_lbfgs_on_a_cluster_equals_lbfgs_in_memory(client):
    X, y, w = _blobs(n=300, spread=2.0)
    loss = CrossEntropyLoss(weight=CLASS_WEIGHT)
    in_memory = _models()["softmax"]()
    history = fit_full_batch(in_memory, X, y, loss=loss, sample_weight=w, alpha=0.1, max_iter=100, tol=1e-9)
    on_cluster = _models()["softmax"]()
    cluster_history = fit_full_batch(on_cluster, da.from_array(X, chunks=(150, -1)), da.from_array(y, chunks=150),
                                     loss=loss, sample_weight=w, alpha=0.1, max_iter=100, tol=1e-9,
                                     client=client)
    _assert_same(on_cluster.parameters(), in_memory.parameters(), rtol=1e-8, atol=1e-10)
    assert len(cluster_history) == len(history) > 5
    # the solution is the minimiser of the in-memory objective: its gradient vanishes there
    _, gradient = _in_memory(on_cluster, X, y, loss, w, alpha=0.1)
    assert max(float(np.max(np.abs(g))) for g in gradient) < 1e-6
    assert history["objective"][-1] < history["objective"][0]


def test_data_past_the_clusters_memory_is_read_from_its_source_not_persisted(client, monkeypatch):
    import crossent.distributed as distributed

    X, y, w = _blobs(n=300, spread=2.0)
    loss = CrossEntropyLoss(weight=CLASS_WEIGHT)
    parts = dict(X=da.from_array(X, chunks=(40, -1)), y=da.from_array(y, chunks=40))
    persisted = _models()["mlp"]()
    fit_full_batch(persisted, **parts, loss=loss, sample_weight=w, alpha=0.1, max_iter=8, tol=0.0, client=client)
    # any data is "too large" for a vanishing share of the memory: 8 blocks, at most 2 per worker in flight
    monkeypatch.setattr(distributed, "PERSIST_MEMORY_FRACTION", 1e-12)
    streamed = _models()["mlp"]()
    with pytest.warns(ResourceWarning, match=r"exceeds 1e-12 of the cluster's memory limit \(1 GiB over 2 workers\)"):
        fit_full_batch(streamed, **parts, loss=loss, sample_weight=w, alpha=0.1, max_iter=8, tol=0.0, client=client)
    # the same sums in the same association: the same parameters bit for bit
    for a, b in zip(streamed.parameters(), persisted.parameters()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="sampling='rows' draws every minibatch from all of it.*use sampling='stream'"):
        fit_minibatch(_models()["mlp"](), **parts, loss=loss, batch_size=32, epochs=1, sampling="rows", client=client)
    fit_minibatch(_models()["mlp"](), **parts, loss=loss, batch_size=32, epochs=1, sampling="stream", client=client)


def test_full_batch_gradient_descent_takes_plain_steps():
    X, y, _ = _blobs(n=100)
    model, twin = _models()["softmax"](), _models()["softmax"]()
    fit_full_batch(model, X, y, solver="gd", lr=0.2, max_iter=3, tol=0.0, block_rows=33)
    for _ in range(3):
        _, gradient = _in_memory(twin, X, y, None)
        for parameter, g in zip(twin.parameters(), gradient):
            parameter -= 0.2 * g
    _assert_same(model.parameters(), twin.parameters())


# ------------------------------------------------------------------ minibatches


@pytest.mark.parametrize("block_rows", [None, 77])
def test_rows_sampling_gives_the_parameters_of_crossent_fit(block_rows):
    """One block or several: the batches are crossent.fit's, so are the weights (momentum, schedule)."""
    X, y, _ = _blobs(n=300)
    model, twin = _models()["mlp"](), _models()["mlp"]()
    history = fit_minibatch(model, X, y, optimizer="momentum", lr=0.05, schedule="cosine", batch_size=32,
                            epochs=3, seed=5, block_rows=block_rows, progress=False)
    expected = crossent.fit(twin, X, y, optimizer="momentum", lr=0.05, schedule="cosine", batch_size=32,
                            epochs=3, seed=5, progress=False)
    _assert_same(model.parameters(), twin.parameters(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(history["train_loss"], expected["train_loss"], rtol=1e-10)
    assert history["train_accuracy"] == expected["train_accuracy"]


def test_rows_sampling_on_a_cluster_gives_the_parameters_of_crossent_fit(client, tmp_path):
    X, y, _ = _blobs(n=240)
    np.save(tmp_path / "X.npy", X)
    model, twin = _models()["softmax"](), _models()["softmax"]()
    fit_minibatch(model, np.load(tmp_path / "X.npy", mmap_mode="r"), y, lr=0.1, batch_size=40, epochs=2, seed=1,
                  client=client, block_rows=70, progress=False)
    crossent.fit(twin, X, y, lr=0.1, batch_size=40, epochs=2, seed=1, progress=False)
    _assert_same(model.parameters(), twin.parameters(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("block_rows", [None, 35])
def test_stream_sampling_is_the_same_on_a_cluster_and_without_one(client, tmp_path, block_rows):
    # block_rows=35 does not divide the 100-row files: each file ends in a 30-row block starting at row 70,
    # which must be one block on the cluster too (not split where 30-row chunks of the whole file would cut it)
    X, y, w = _blobs(n=300)
    directory = tmp_path / "chunks"
    write_chunks(directory, X, y, rows_per_file=100)
    local, remote = _models()["mlp"](), _models()["mlp"]()
    local_history = fit_minibatch(local, directory, sampling="stream", batch_size=32, epochs=2, seed=2,
                                  optimizer="adam", lr=0.01, progress=False, block_rows=block_rows)
    fit_minibatch(remote, directory, sampling="stream", batch_size=32, epochs=2, seed=2, optimizer="adam",
                  lr=0.01, client=client, progress=False, block_rows=block_rows)
    _assert_same(remote.parameters(), local.parameters(), rtol=1e-10, atol=1e-12)
    if block_rows is not None:
        return
    # 100-row blocks and batches of 32: four batches per block (the last one of 4 rows)
    twin = _models()["mlp"]()
    crossent.fit(twin, X, y, batch_size=32, epochs=2, seed=2, optimizer="adam", lr=0.01, progress=False)
    assert not np.allclose(twin.parameters()[0], local.parameters()[0])  # another sample order
    assert len(local_history) == 2


@pytest.mark.parametrize("sampling", ["rows", "stream"])
def test_sgd_on_a_cluster_reaches_in_memory_accuracy(client, sampling):
    X, y, _ = _blobs(n=1500, n_features=5, spread=1.5, seed=11)
    X, X_test, y, y_test = X[:1000], X[1000:], y[:1000], y[1000:]
    model, twin = _models()["softmax"](), _models()["softmax"]()
    history = fit_minibatch(model, da.from_array(X, chunks=(500, -1)), y, optimizer="momentum", lr=0.05,
                            batch_size=100, epochs=2, sampling=sampling, client=client,
                            validation_data=(X_test, y_test), progress=False)
    crossent.fit(twin, X, y, optimizer="momentum", lr=0.05, batch_size=100, epochs=2, progress=False)
    reference = crossent.evaluate(twin, X_test, y_test)
    assert crossent.evaluate(model, X_test, y_test)["accuracy"] >= reference["accuracy"] - 0.01
    assert history["val_accuracy"][-1] == crossent.evaluate(model, X_test, y_test)["accuracy"]
    assert history["train_loss"][-1] < history["train_loss"][0]


def test_checkpoint_and_resume_end_with_the_uninterrupted_weights(tmp_path):
    X, y, _ = _blobs(n=200)
    # 200 rows in blocks of 64, 64, 64, 8 and batches of 16: 4 + 4 + 4 + 1 = 13 steps per epoch
    options = dict(optimizer="adam", lr=0.01, batch_size=16, epochs=3, seed=4, sampling="stream",
                   block_rows=64, progress=False)
    uninterrupted = _models()["mlp"]()
    expected = fit_minibatch(uninterrupted, X, y, **options)
    path = tmp_path / "run.npz"

    def crash_after_epoch_two(record, model):
        if record["epoch"] == 2:
            raise KeyboardInterrupt  # the run dies; its last checkpoint is from global step 20

    with pytest.raises(KeyboardInterrupt):
        fit_minibatch(_models()["mlp"](), X, y, checkpoint=path, checkpoint_every=20,
                      callbacks=[crash_after_epoch_two], **options)
    saved = crossent.load_checkpoint(path).training["distributed"]
    assert (saved["epoch"], saved["step"]) == (1, 7)  # in the middle of the second epoch
    resumed = _models()["mlp"]()
    history = fit_minibatch(resumed, X, y, resume=path, **options)
    _assert_same(resumed.parameters(), uninterrupted.parameters(), rtol=1e-13, atol=1e-15)
    # the second epoch's record adds up the steps before and after the checkpoint
    np.testing.assert_allclose(history["train_loss"], expected["train_loss"], rtol=1e-13)
    assert history["train_accuracy"] == expected["train_accuracy"]
    with pytest.raises(ValueError, match="saved with seed=4; this run has seed=5"):
        fit_minibatch(_models()["mlp"](), X, y, resume=path, **{**options, "seed": 5})


def test_a_history_continues_like_crossent_fit():
    X, y, _ = _blobs(n=120)
    straight, continued = _models()["softmax"](), _models()["softmax"]()
    fit_minibatch(straight, X, y, optimizer=crossent.optim.SGD(straight.parameters(), lr=0.1, momentum=0.9),
                  batch_size=16, epochs=3, block_rows=50, progress=False)
    optimizer = crossent.optim.SGD(continued.parameters(), lr=0.1, momentum=0.9)
    history = fit_minibatch(continued, X, y, optimizer=optimizer, batch_size=16, epochs=1, block_rows=50,
                            progress=False)
    history = fit_minibatch(continued, X, y, optimizer=optimizer, batch_size=16, epochs=3, block_rows=50,
                            history=history, progress=False)
    assert history["epoch"] == [1, 2, 3]
    _assert_same(continued.parameters(), straight.parameters(), rtol=1e-13, atol=1e-15)


# ------------------------------------------------------------------ bounded memory out of core


def test_memmap_fit_holds_one_block_in_memory(tmp_path):
    """A fit over a file 10x the block budget grows the peak RSS by about one block, not the file."""
    n_features, block_rows, n_rows = 64, 16384, 163840  # 4 MiB blocks of float32, a 40 MiB file
    rng = np.random.default_rng(0)
    X = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", dtype=np.float32, shape=(n_rows, n_features))
    for start in range(0, n_rows, block_rows):
        X[start : start + block_rows] = rng.normal(size=(block_rows, n_features))
    X.flush()
    del X
    np.save(tmp_path / "y.npy", rng.integers(0, 10, n_rows).astype(np.int32))
    script = textwrap.dedent(f"""
        import resource, numpy as np
        from crossent.nn import SoftmaxRegression
        from crossent.distributed import fit_full_batch, fit_minibatch
        X = np.load({str(tmp_path / "X.npy")!r}, mmap_mode="r")
        y = np.load({str(tmp_path / "y.npy")!r}, mmap_mode="r")
        model = SoftmaxRegression({n_features}, 10)
        # warm-up on a few blocks' worth, so that code paths and allocator pools exist before measuring
        fit_full_batch(model, X[:{2 * block_rows}], y[:{2 * block_rows}], solver="gd", max_iter=1,
                       block_rows={block_rows})
        fit_minibatch(model, X[:{2 * block_rows}], y[:{2 * block_rows}], sampling="stream", batch_size=8192,
                      epochs=1, block_rows={block_rows}, progress=False)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        fit_full_batch(model, X, y, solver="gd", max_iter=1, block_rows={block_rows})
        fit_minibatch(model, X, y, sampling="stream", batch_size=8192, epochs=1, block_rows={block_rows},
                      progress=False)
        print(before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    """)
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONWARNINGS": "error"})
    assert output.returncode == 0, output.stderr
    before, after = (int(v) * 1024 for v in output.stdout.split())  # ru_maxrss is in KiB on Linux
    file_bytes = n_rows * n_features * 4
    block_bytes = block_rows * n_features * 4
    growth = after - before
    assert growth < 2 * block_bytes + 8 * 2**20 < file_bytes / 2, (growth, block_bytes, file_bytes)


# ------------------------------------------------------------------ bad input


def test_bad_input_is_named(tmp_path):
    X, y, _ = _blobs(n=20)
    model = _models()["softmax"]()
    with pytest.raises(ValueError, match="X and y must have the same number of rows"):
        loss_and_gradient(model, X, y[:-1])
    with pytest.raises(ValueError, match="y is required"):
        loss_and_gradient(model, X)
    with pytest.raises(ValueError, match="sampling must be one of rows, stream"):
        fit_minibatch(model, X, y, sampling="random")
    with pytest.raises(ValueError, match="X has 4 columns but the model takes 5"):
        loss_and_gradient(model, X[:, :4], y)
    with pytest.raises(TypeError, match="X must be a NumPy array"):
        loss_and_gradient(model, {"X": 1}, y)
    np.save(tmp_path / "F.npy", np.asfortranarray(X))
    with pytest.raises(ValueError, match="Fortran-ordered"):
        loss_and_gradient(model, tmp_path / "F.npy", y)
    write_chunks(tmp_path / "chunks", X, y, rows_per_file=5)
    os.remove(tmp_path / "chunks" / "X_002.npy")
    os.remove(tmp_path / "chunks" / "y_002.npy")
    with pytest.raises(ValueError, match=r"without gaps; missing number\(s\) \[2\]"):
        loss_and_gradient(model, tmp_path / "chunks")
    with pytest.raises(ValueError, match="pass y=None"):
        loss_and_gradient(model, tmp_path / "chunks", y)


# ------------------------------------------------------------------ crossent.fit, the estimators and the CLI delegate


def test_fit_on_a_chunk_directory_is_fit_minibatch(tmp_path):
    X, y, _ = _blobs(n=250)
    write_chunks(tmp_path / "chunks", X, y, rows_per_file=90)
    options = dict(optimizer="momentum", lr=0.05, batch_size=32, epochs=2, seed=7, progress=False)
    delegated, direct = _models()["mlp"](), _models()["mlp"]()
    history = crossent.fit(delegated, tmp_path / "chunks", **options)
    expected = fit_minibatch(direct, tmp_path / "chunks", **options)
    _assert_same(delegated.parameters(), direct.parameters(), rtol=0, atol=0)
    assert history["train_loss"] == expected["train_loss"]
    # and both are crossent.fit's in-memory run: the same batches
    twin = _models()["mlp"]()
    crossent.fit(twin, X, y, **options)
    _assert_same(delegated.parameters(), twin.parameters(), rtol=1e-10, atol=1e-12)


def test_fit_on_a_dask_array_with_a_client_is_fit_minibatch(client):
    X, y, _ = _blobs(n=240)
    options = dict(lr=0.1, batch_size=None, epochs=3, seed=1, progress=False)  # None: full-batch steps
    delegated, direct = _models()["softmax"](), _models()["softmax"]()
    crossent.fit(delegated, da.from_array(X, chunks=(80, -1)), da.from_array(y, chunks=80), client=client,
                 **options)
    fit_minibatch(direct, da.from_array(X, chunks=(80, -1)), da.from_array(y, chunks=80), client=client, **options)
    _assert_same(delegated.parameters(), direct.parameters(), rtol=0, atol=0)
    in_memory = _models()["softmax"]()
    crossent.fit(in_memory, X, y, **options)
    _assert_same(delegated.parameters(), in_memory.parameters(), rtol=1e-12, atol=1e-14)


def test_fit_names_the_options_that_need_rows_in_memory(tmp_path):
    X, y, _ = _blobs(n=40)
    write_chunks(tmp_path / "chunks", X, y, rows_per_file=20)
    model = _models()["softmax"]()
    with pytest.raises(ValueError, match=r"validation_split=0.2 is not supported when X is the path .*validation_data"):
        crossent.fit(model, str(tmp_path / "chunks"), validation_split=0.2)
    with pytest.raises(ValueError, match="early_stopping=3 is not supported when X is a dask array"):
        crossent.fit(model, da.from_array(X, chunks=(20, -1)), y, early_stopping=3)
    with pytest.raises(ValueError, match="adversarial='fgsm' is not supported when X is a numpy.memmap"):
        np.save(tmp_path / "X.npy", X)
        crossent.fit(model, np.load(tmp_path / "X.npy", mmap_mode="r"), y, adversarial="fgsm")
    with pytest.raises(ValueError, match="y is required unless X is a directory of chunk files"):
        crossent.fit(model, X)


@pytest.mark.parametrize("estimator, options", [
    ("SoftmaxClassifier", dict(solver="lbfgs", alpha=1e-2, max_iter=200, tol=1e-10)),
    ("MLPClassifier", dict(solver="gd", alpha=1e-3, max_iter=15, tol=0.0, n_iter_no_change=100,
                           hidden_layer_sizes=(6,), activation="tanh", random_state=0, learning_rate=0.3)),
])
def test_an_estimator_on_dask_arrays_minimises_its_in_memory_objective(client, estimator, options):
    """Full batch on the cluster: the same objective J, so the same weights and loss curve (float64, 1e-8)."""
    import warnings

    sklearn_module = pytest.importorskip("crossent.sklearn")
    X, y, w = _blobs(n=300, spread=2.0)
    labels = np.array(["cat", "dog", "bird"])[y]
    options = dict(options, class_weight={"dog": 2.0})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gd stops at max_iter: a ConvergenceWarning on both sides
        in_memory = getattr(sklearn_module, estimator)(**options).fit(X, labels, sample_weight=w)
        on_cluster = getattr(sklearn_module, estimator)(**options).fit(
            da.from_array(X, chunks=(150, -1)), da.from_array(labels, chunks=150), sample_weight=w)
    assert on_cluster.n_iter_ == in_memory.n_iter_ > 5
    np.testing.assert_allclose(on_cluster.loss_curve_, in_memory.loss_curve_, rtol=1e-8)
    _assert_same(on_cluster.model_.parameters(), in_memory.model_.parameters(), rtol=1e-8, atol=1e-8)
    assert list(on_cluster.classes_) == ["bird", "cat", "dog"] and on_cluster.n_features_in_ == 5
    dask_X = da.from_array(X, chunks=(128, -1))
    probabilities = on_cluster.predict_proba(dask_X)
    assert isinstance(probabilities, da.Array) and probabilities.shape == (300, 3)
    np.testing.assert_allclose(probabilities.compute(), in_memory.predict_proba(X), rtol=1e-7, atol=1e-9)
    np.testing.assert_array_equal(on_cluster.predict(dask_X).compute(), in_memory.predict(X))
    with pytest.raises(ValueError, match="early_stopping=True holds out rows"):
        getattr(sklearn_module, estimator)(early_stopping=True).fit(dask_X, labels)


def test_an_estimator_streams_blocks_when_the_data_exceeds_the_clusters_memory(client, monkeypatch):
    import warnings

    import crossent.distributed as distributed

    sklearn_module = pytest.importorskip("crossent.sklearn")
    X, y, _ = _blobs(n=600, spread=1.0)
    dask_X, dask_y = da.from_array(X, chunks=(150, -1)), da.from_array(y, chunks=150)
    monkeypatch.setattr(distributed, "PERSIST_MEMORY_FRACTION", 1e-12)
    classifier = sklearn_module.SoftmaxClassifier(solver="sgd", learning_rate=0.1, batch_size=64, max_iter=3,
                                                   learning_rate_schedule="cosine", random_state=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # and the max_iter ConvergenceWarning
        classifier.fit(dask_X, dask_y)
    assert any(issubclass(warning.category, ResourceWarning) and "drawn block by block" in str(warning.message)
               for warning in caught)
    # 4 blocks of 150 rows in batches of 64: 3 steps each, 12 per epoch, all of them taken
    assert classifier._optimizer.step_count == 3 * 12
    assert classifier.score(X, y) > 0.9


def test_crossent_train_on_a_chunk_directory_and_a_running_scheduler(client, tmp_path, capsys):
    """--dataset DIR (test split in DIR/test) with --dask tcp://...: the in-memory run's figures."""
    from crossent.cli import main
    from crossent.datasets import load_digits

    X_train, y_train, X_test, y_test = load_digits(seed=0)
    write_chunks(tmp_path / "digits", X_train, y_train, rows_per_file=400)
    write_chunks(tmp_path / "digits" / "test", X_test, y_test, rows_per_file=300)
    address = client.scheduler.address
    arguments = ["train", "--epochs", "2", "--quiet", "--batch-size", "64"]
    assert main(arguments + ["--dataset", str(tmp_path / "digits"), "--dask", address,
                             "--metrics-out", str(tmp_path / "cluster.json")]) == 0
    assert main(arguments + ["--dataset", "digits", "--metrics-out", str(tmp_path / "memory.json")]) == 0
    import json

    cluster, memory = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("cluster", "memory"))
    assert cluster["test_accuracy"] == memory["test_accuracy"] > 0.9
    # the directory is standardised on the fly with statistics from one pass: float32 rounding apart
    np.testing.assert_allclose([r["train_loss"] for r in cluster["history"]],
                               [r["train_loss"] for r in memory["history"]], rtol=1e-5)
    capsys.readouterr()
    assert main(["train", "--dataset", str(tmp_path / "digits" / "test")]) == 2
    assert "needs a test split" in capsys.readouterr().err


def test_crossent_train_dask_local():
    command = [sys.executable, "-m", "crossent", "train"]
    # large batches: every step is a round trip through the scheduler
    run = subprocess.run(command + ["--dask", "local:2", "--dataset", "digits", "--epochs", "2", "--batch-size",
                                    "512"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "(2 workers)" in run.stdout and "test accuracy" in run.stdout


def test_a_bad_dask_value_is_one_line_and_exit_status_2(capsys):
    from crossent.cli import main

    for value, expected in (("local:two", "expected local, local:N"), ("local:0", "needs N >= 1"),
                            ("http://example:80", "scheduler address tcp://host:port")):
        assert main(["train", "--dask", value]) == 2
        error = capsys.readouterr().err
        assert error.count("\n") == 1 and expected in error and error.startswith("crossent train: error:")
    assert main(["train", "--test-dataset", "elsewhere"]) == 2
    assert "--test-dataset applies to a chunk-directory --dataset only" in capsys.readouterr().err


# ------------------------------------------------------------------ fault tolerance (last: it restarts a worker)


def test_a_killed_worker_does_not_change_the_result(client, tmp_path):
    """Kill one worker process mid-fit: dask recomputes its blocks from the files and the fit ends the same."""
    X, y, _ = _blobs(n=400)
    write_chunks(tmp_path / "chunks", X, y, rows_per_file=100)
    options = dict(batch_size=50, epochs=2, seed=3, optimizer="momentum", lr=0.05, client=client,
                   progress=False)
    undisturbed = _models()["mlp"]()
    fit_minibatch(undisturbed, tmp_path / "chunks", **options)
    workers_before = set(client.scheduler_info()["workers"])
    victim = sorted(workers_before)[0]

    async def exit_process():
        os._exit(1)

    def kill_one_worker(record, model):
        if record["epoch"] == 1:
            client.run(exit_process, workers=[victim], wait=False)
            # the second epoch starts only once the scheduler has lost the worker and the blocks it held
            deadline = time.monotonic() + 30
            while victim in client.scheduler_info()["workers"] and time.monotonic() < deadline:
                time.sleep(0.05)
            assert victim not in client.scheduler_info()["workers"]

    disturbed = _models()["mlp"]()
    fit_minibatch(disturbed, tmp_path / "chunks", callbacks=[kill_one_worker], **options)
    client.wait_for_workers(2, timeout=60)  # the nanny starts a new worker process
    _assert_same(disturbed.parameters(), undisturbed.parameters(), rtol=1e-12, atol=1e-14)
    twin = _models()["mlp"]()
    crossent.fit(twin, X, y, **{k: v for k, v in options.items() if k != "client"})
    _assert_same(disturbed.parameters(), twin.parameters(), rtol=1e-10, atol=1e-12)
