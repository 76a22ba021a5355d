"""CSV and NPZ files, the shipped digits, Normalizer, train_test_split and load_dataset."""

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest

from crossent.datasets import (
    DatasetNotFoundError,
    Normalizer,
    load_csv,
    load_dataset,
    load_digits,
    load_npz,
    train_test_split,
)

from crossent.datasets import digits as digits_module

SHARED_MNIST = Path(__file__).parents[2] / "shared" / "data" / "mnist"
SHIPPED_DATA = Path(digits_module.__file__).parent / "data"


def write_text(path: Path, text: str, encoding="utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


# --- CSV ------------------------------------------------------------------------------------


def test_csv_with_header_and_string_labels(tmp_path):
    path = write_text(tmp_path / "f.csv", "a,b,label\n1,2,cat\n3.5,-4e2,dog\n\n5,6,cat\n")
    X, y, class_names = load_csv(path)
    np.testing.assert_array_equal(X, [[1, 2], [3.5, -400], [5, 6]])
    assert X.dtype == np.float64 and y.dtype == np.int64
    assert y.tolist() == [0, 1, 0] and class_names == ["cat", "dog"]


def test_csv_integer_labels_are_kept(tmp_path):
    path = write_text(tmp_path / "f.csv", "label,x\n3,0.5\n0,1.5\n3,2.5\n")
    X, y, class_names = load_csv(path, dtype=np.float32)
    assert y.tolist() == [3, 0, 3] and class_names == ["0", "1", "2", "3"]
    assert X.dtype == np.float32 and X[:, 0].tolist() == [0.5, 1.5, 2.5]


def test_csv_numeric_labels_are_numbered_in_numeric_order(tmp_path):
    path = write_text(tmp_path / "f.csv", "x,label\n1,-1\n2,1\n3,-1\n")
    assert load_csv(path)[1:] == (pytest.approx([0, 1, 0]), ["-1", "1"])
    path = write_text(tmp_path / "g.csv", "x,label\n1,10.5\n2,2.5\n3,10.5\n")
    _, y, class_names = load_csv(path)
    assert y.tolist() == [1, 0, 1] and class_names == ["2.5", "10.5"]


@pytest.mark.parametrize(
    "text,kwargs,expected_X,expected_y",
    [
        ("1,2,0\n3,4,1\n", {"target": -1}, [[1, 2], [3, 4]], [0, 1]),  # no header detected
        ("1,2,0\n3,4,1\n", {"target": 0}, [[2, 0], [4, 1]], [1, 3]),
        ("1,2,0\n3,4,1\n", {"target": None}, [[1, 2], [3, 4]], [0, 1]),
        ("f1,f2,y\n1,2,0\n3,4,1\n", {"target": None}, [[1, 2], [3, 4]], [0, 1]),
        ("label;f\n1;2\n0;4\n", {"target": None, "delimiter": ";"}, [[2], [4]], [1, 0]),
        ('"x","label"\n"1.5","a"\n"2","b"\n', {}, [[1.5], [2]], [0, 1]),
        ("10,20,label\n1,2,0\n", {"header": True}, [[1, 2]], [0]),
        ("\ufeffx,label\n1,0\n", {}, [[1]], [0]),  # byte-order mark
        ("x , label \n 1 , 0 \n", {}, [[1]], [0]),  # spaces around names and values
    ],
)
def test_csv_variants(tmp_path, text, kwargs, expected_X, expected_y):
    X, y, _ = load_csv(write_text(tmp_path / "f.csv", text), **kwargs)
    np.testing.assert_array_equal(X, expected_X)
    assert y.tolist() == expected_y


def test_csv_across_row_blocks_matches_reference_and_reports_the_right_line(tmp_path, rng):
    values = np.round(rng.standard_normal((5000, 3)), 6)
    labels = rng.integers(0, 4, 5000)
    lines = ["a,b,c,label"] + [f"{a!r},{b!r},{c!r},{k}" for (a, b, c), k in zip(values.tolist(), labels)]
    path = write_text(tmp_path / "big.csv", "\n".join(lines) + "\n")
    X, y, _ = load_csv(path)
    np.testing.assert_array_equal(X, values)
    np.testing.assert_array_equal(y, labels)
    lines[4500] = lines[4500].replace(",", ",oops", 1)  # line 4501 of the file, in the second block
    write_text(path, "\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"line 4501, column 2 \('b'\): feature value 'oops.*' is not a number"):
        load_csv(path)


@pytest.mark.parametrize(
    "text,kwargs,error,pattern",
    [
        ("a,b,label\n1,2,x\n", {"target": "class"}, ValueError,
         r"target column 'class' not found .*columns are: 'a', 'b', 'label'"),
        ("a,b,label\n1,2,x\n3,4\n", {}, ValueError, r"line 3: 2 fields, expected 3 as in line 1"),
        ("a,b,label\n1,2,x\n3,4,y,5\n", {}, ValueError, r"line 3: 4 fields, expected 3"),
        ("a,b,label\n1,2,x\n3,four,y\n", {}, ValueError,
         r"line 3, column 2 \('b'\): feature value 'four' is not a number"),
        ("a,b,label\n1,,x\n", {}, ValueError, r"line 2, column 2 \('b'\): feature value '' is not a number"),
        ("a,b,label\n1,inf,x\n", {}, ValueError, r"line 2, column 2 \('b'\): feature value 'inf' is not finite"),
        ("a,b,label\n1,nan,x\n", {}, ValueError, r"'nan' is not finite"),
        ("a,b,label\n1,2, \n", {}, ValueError, r"line 2, column 3 \('label'\): empty label"),
        ("", {}, ValueError, r"holds no rows"),
        ("\n\n", {}, ValueError, r"holds no rows"),
        ("a,b,label\n", {}, ValueError, r"has a header but no data rows"),
        ("label\nx\n", {}, ValueError, r"only the label column"),
        ("1,2,0\n", {"target": "label", "header": False}, ValueError, r"read without a header"),
        ("1,2,0\n", {"target": 3}, ValueError, r"target=3 is out of range .* 3 columns"),
    ],
)
def test_csv_errors_name_the_file(tmp_path, text, kwargs, error, pattern):
    path = write_text(tmp_path / "bad.csv", text)
    with pytest.raises(error, match=pattern) as raised:
        load_csv(path, **kwargs)
    assert str(path) in str(raised.value)


@pytest.mark.parametrize(
    "kwargs,error,pattern",
    [
        ({"target": 1.5}, TypeError, r"target must be a column name"),
        ({"target": True}, TypeError, r"target must be a column name"),
        ({"delimiter": ",,"}, ValueError, r"delimiter must be a single character"),
        ({"header": "yes"}, ValueError, r"header must be 'auto', True or False"),
        ({"header": 1}, ValueError, r"header must be 'auto', True or False"),
        ({"dtype": np.int64}, TypeError, r"dtype must be float32 or float64"),
    ],
)
def test_csv_argument_errors(tmp_path, kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        load_csv(write_text(tmp_path / "good.csv", "1,2,0\n"), **kwargs)


def test_csv_missing_or_undecodable_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.csv does not exist"):
        load_csv(tmp_path / "absent.csv")
    with pytest.raises(FileNotFoundError, match="is a directory"):
        load_csv(tmp_path)
    write_text(tmp_path / "latin.csv", "x,label\n1,caf\xe9\n", encoding="latin-1")
    with pytest.raises(ValueError, match="is not UTF-8 text"):
        load_csv(tmp_path / "latin.csv")


# --- NPZ ------------------------------------------------------------------------------------


def test_npz_single_set_and_split(tmp_path, rng):
    X, y = rng.standard_normal((6, 3)), np.array([0, 1, 2, 0, 1, 2])
    np.savez(tmp_path / "single.npz", X=X, y=y, notes=np.arange(2))
    data = load_npz(tmp_path / "single.npz")
    assert sorted(data) == ["X", "y"]
    np.testing.assert_array_equal(data["X"], X)
    np.testing.assert_array_equal(data["y"], y)

    images = rng.integers(0, 255, (4, 5, 5), dtype=np.uint8)
    np.savez_compressed(
        tmp_path / "split.npz", X_train=images, y_train=np.array([0, 1, 1, 0]),
        X_test=images[:2], y_test=np.array([1, 0], np.uint8), class_names=np.array(["no", "yes"]),
    )
    data = load_npz(str(tmp_path / "split.npz"))
    assert sorted(data) == ["X_test", "X_train", "class_names", "y_test", "y_train"]
    assert data["X_train"].shape == (4, 5, 5) and data["class_names"] == ["no", "yes"]


@pytest.mark.parametrize(
    "arrays,pattern",
    [
        ({"features": np.zeros((2, 2)), "labels": np.zeros(2, int)},
         r"must hold arrays X and y.*found features, labels"),
        ({"X": np.zeros((2, 2))}, r"found X$"),
        ({"X": np.zeros((2, 2)), "y": np.zeros(2, int), "X_train": np.zeros((2, 2)), "y_train": np.zeros(2, int),
          "X_test": np.zeros((1, 2)), "y_test": np.zeros(1, int)}, r"holds both"),
        ({"X": np.zeros((2, 2)), "y": np.zeros(2)}, r"y must be a 1-D array of integer class labels, got float64"),
        ({"X": np.zeros((2, 2)), "y": np.zeros((2, 1), int)}, r"y must be a 1-D array"),
        ({"X": np.zeros(2), "y": np.zeros(2, int)}, r"X must be a numeric array of shape \(n_samples"),
        ({"X": np.array([["a"], ["b"]]), "y": np.zeros(2, int)}, r"X must be a numeric array"),
        ({"X": np.zeros((3, 2)), "y": np.zeros(2, int)}, r"X has 3 rows but y has 2 labels"),
        ({"X": np.zeros((2, 2)), "y": np.array([0, -1])}, r"labels >= 0, found -1"),
        ({"X_train": np.zeros((2, 2)), "y_train": np.zeros(2, int), "X_test": np.zeros((1, 3)),
          "y_test": np.zeros(1, int)}, r"X_train rows have shape \(2,\) but X_test rows have shape \(3,\)"),
        ({"X": np.zeros((2, 2)), "y": np.array([0, 2]), "class_names": np.array(["a", "b"])},
         r"class_names has 2 names but a label is 2"),
        ({"X": np.zeros((2, 2)), "y": np.array([0, 1]), "class_names": np.array([0, 1])},
         r"class_names must be a 1-D array of strings"),
    ],
)
def test_npz_errors(tmp_path, arrays, pattern):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=pattern) as raised:
        load_npz(path)
    assert str(path) in str(raised.value)


def test_npz_refuses_pickles_and_other_formats(tmp_path):
    np.savez(tmp_path / "objects.npz", X=np.array([[1], [2]], dtype=object), y=np.array([0, 1]))
    with pytest.raises(ValueError, match="cannot be read without pickle"):
        load_npz(tmp_path / "objects.npz")
    np.save(tmp_path / "array.npy", np.zeros(3))
    with pytest.raises(ValueError, match=r"single array \(.npy format\)"):
        load_npz(tmp_path / "array.npy")
    write_text(tmp_path / "text.npz", "x,label\n1,0\n")
    with pytest.raises(ValueError, match="is not a NumPy .npz archive"):
        load_npz(tmp_path / "text.npz")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_npz(tmp_path / "absent.npz")


# --- shipped digits -------------------------------------------------------------------------


def test_digits_shapes_classes_and_scaling():
    X_train, y_train, X_test, y_test = load_digits()
    assert X_train.shape == (1347, 64) and X_test.shape == (450, 64)
    assert X_train.dtype == np.float32 and y_train.dtype == np.int64
    assert X_train.min() == 0.0 and X_train.max() == 1.0
    assert set(y_train.tolist()) == set(y_test.tolist()) == set(range(10))
    raw_train, raw_y, raw_test, _ = load_digits(normalize="none", dtype=np.float64)
    assert raw_train.dtype == np.float64 and raw_train.max() == 16.0
    np.testing.assert_array_equal(raw_train, np.round(raw_train))
    np.testing.assert_array_equal(X_train, raw_train.astype(np.float32) / np.float32(16))
    np.testing.assert_array_equal(raw_y, y_train)


def test_digits_split_is_stratified_and_covers_every_image_once():
    _, y_train, _, y_test = load_digits(test_size=0.25, seed=3)
    counts = np.bincount(np.concatenate([y_train, y_test]))
    assert counts.tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    assert np.all(np.abs(np.bincount(y_test) - counts * 450 / 1797) < 1)
    X_train, _, X_test, _ = load_digits(test_size=0.25, seed=3, normalize="none")
    together = np.concatenate([X_train, X_test])
    with np.load(SHIPPED_DATA / "digits.npz") as archive:
        full = archive["X"].astype(np.float32)
    assert len(together) == len(full)
    np.testing.assert_array_equal(np.unique(together, axis=0), np.unique(full, axis=0))


def test_digits_are_deterministic_per_seed():
    first, second, other = load_digits(seed=7), load_digits(seed=7), load_digits(seed=8)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[1], other[1])
    assert load_digits(test_size=100)[2].shape == (100, 64)


def test_shipped_digits_file_is_the_documented_one():
    folder = SHIPPED_DATA
    with np.load(folder / "digits.npz") as archive:
        X, y = archive["X"], archive["y"]
    assert X.shape == (1797, 64) and X.dtype == np.uint8 and y.dtype == np.uint8
    readme = (folder / "README.md").read_text()
    assert hashlib.sha256(X.tobytes()).hexdigest() in readme
    assert hashlib.sha256(y.tobytes()).hexdigest() in readme
    assert "CC BY 4.0" in readme


# --- Normalizer -----------------------------------------------------------------------------


def test_standardize_uses_training_statistics_only(rng):
    train = rng.normal(3.0, 2.0, (200, 4))
    test = rng.normal(-5.0, 7.0, (50, 4))
    normalizer = Normalizer("standardize").fit(train)
    np.testing.assert_allclose(normalizer.offset, train.mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(normalizer.scale, train.std(axis=0), rtol=1e-14)
    np.testing.assert_allclose(normalizer.transform(test), (test - train.mean(axis=0)) / train.std(axis=0), rtol=1e-12)
    standardized = normalizer.transform(train)
    np.testing.assert_allclose(standardized.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(standardized.std(axis=0), 1, rtol=1e-12)


def test_standardize_statistics_across_row_blocks_are_accurate(rng):
    # 20000 rows span three blocks; a large offset punishes one-pass formulas
    train = (1e4 + rng.standard_normal((20000, 3))).astype(np.float32)
    normalizer = Normalizer().fit(train)
    reference = train.astype(np.float64)
    np.testing.assert_allclose(normalizer.offset, reference.mean(axis=0), rtol=1e-15)
    np.testing.assert_allclose(normalizer.scale, reference.std(axis=0), rtol=1e-10)


def test_zero_variance_features_map_to_zero(rng):
    train = np.column_stack([rng.standard_normal(9), np.full(9, 0.1), np.zeros(9)])
    normalizer = Normalizer("standardize").fit(train)
    assert normalizer.scale[1:].tolist() == [1.0, 1.0]
    result = normalizer.transform(train)
    assert np.all(result[:, 1:] == 0.0)
    np.testing.assert_array_equal(normalizer.transform(np.array([[0.0, 1.1, 2.0]]))[0, 1:], [1.0, 2.0])
    constant = Normalizer("unit").fit(np.full((3, 2), 4.0))
    assert constant.transform(np.full((1, 2), 5.0)).tolist() == [[1.0, 1.0]]


def test_unit_maps_the_training_range_to_zero_one(rng):
    pixels = rng.integers(0, 256, (100, 6)).astype(np.float32)
    pixels[0, 0], pixels[1, 1] = 0, 255
    normalizer = Normalizer("unit").fit(pixels)
    result = normalizer.transform(pixels)
    assert result.dtype == np.float32 and result.min() == 0.0 and result.max() == 1.0
    np.testing.assert_array_equal(result, pixels / np.float32(255))
    shifted = Normalizer("unit").fit(np.array([[-2.0, 0.0], [6.0, 1.0]]))
    assert shifted.transform(np.array([[2.0, 10.0]])).tolist() == [[0.5, 1.5]]


def test_dtypes_and_copies(rng):
    train = rng.standard_normal((5, 2)).astype(np.float32)
    normalizer = Normalizer().fit(train)
    assert normalizer.transform(train).dtype == np.float32
    assert normalizer.transform(train.astype(np.float64)).dtype == np.float64
    assert normalizer.transform(np.ones((2, 2), np.int32)).dtype == np.float64
    none = Normalizer("none")
    result = none.transform(train)  # nothing to learn: works unfitted
    np.testing.assert_array_equal(result, train)
    assert result is not train
    np.testing.assert_array_equal(Normalizer().fit_transform(train), Normalizer().fit(train).transform(train))


def test_state_round_trips_through_json(rng):
    train = rng.standard_normal((30, 3))
    for method in ("none", "unit", "standardize"):
        normalizer = Normalizer(method).fit(train)
        restored = Normalizer.from_state(json.loads(json.dumps(normalizer.to_state())))
        assert restored.method == method and restored.n_features == 3
        np.testing.assert_array_equal(restored.transform(train), normalizer.transform(train))
    unfitted = Normalizer.from_state(json.loads(json.dumps(Normalizer("unit").to_state())))
    assert unfitted.method == "unit" and not unfitted.is_fitted
    assert repr(Normalizer("unit").fit(train)) == "Normalizer(method='unit', n_features=3)"


@pytest.mark.parametrize(
    "state,error,pattern",
    [
        ([1, 2], TypeError, "state must be a dict"),
        ({"method": "unit"}, ValueError, "lacks the key"),
        ({"method": "minmax", "n_features": None, "offset": None, "scale": None}, ValueError, "method must be one of"),
        ({"method": "unit", "n_features": 2, "offset": [0.0], "scale": [1.0, 1.0]}, ValueError,
         "must be 2 finite numbers"),
        ({"method": "unit", "n_features": 1, "offset": [0.0], "scale": [0.0]}, ValueError, "must be positive"),
        ({"method": "unit", "n_features": 1, "offset": ["a"], "scale": [1.0]}, ValueError, "list of numbers"),
        ({"method": "unit", "n_features": 0, "offset": [], "scale": []}, ValueError, "positive integer"),
        ({"method": "unit", "n_features": None, "offset": [0.0], "scale": [1.0]}, ValueError, "n_features is None"),
    ],
)
def test_bad_states_are_rejected(state, error, pattern):
    with pytest.raises(error, match=pattern):
        Normalizer.from_state(state)


def test_normalizer_errors(rng):
    with pytest.raises(ValueError, match="method must be one of"):
        Normalizer("zscore")
    with pytest.raises(RuntimeError, match="not fitted"):
        Normalizer("standardize").transform(np.ones((2, 2)))
    fitted = Normalizer().fit(rng.standard_normal((4, 3)))
    with pytest.raises(ValueError, match="X has 2 features, but this Normalizer was fitted on 3"):
        fitted.transform(np.ones((1, 2)))
    with pytest.raises(ValueError, match="2-D array"):
        fitted.transform(np.ones(3))
    with pytest.raises(ValueError, match=r"must be finite; found nan at row 1, column 0"):
        Normalizer().fit(np.array([[1.0], [np.nan]]))
    with pytest.raises(ValueError, match="at least one row"):
        Normalizer().fit(np.ones((0, 2)))
    with pytest.raises(TypeError):
        Normalizer().fit(np.array([["a"]]))


# --- train_test_split -----------------------------------------------------------------------


def test_split_sizes_pairing_and_coverage(rng):
    y = rng.integers(0, 3, 101)
    X = np.column_stack([np.arange(101), y * 10])  # each row remembers its index and label
    X_train, y_train, X_test, y_test = train_test_split(X, y, test_size=0.3, seed=1)
    assert len(X_test) == math.ceil(0.3 * 101) == 31 and len(X_train) == 70
    np.testing.assert_array_equal(X_train[:, 1], y_train * 10)
    np.testing.assert_array_equal(X_test[:, 1], y_test * 10)
    assert sorted(np.concatenate([X_train[:, 0], X_test[:, 0]]).tolist()) == list(range(101))
    assert len(train_test_split(X, y, test_size=10, seed=1)[2]) == 10


def test_stratified_counts_are_within_one_of_the_exact_share(rng):
    y = np.repeat(["a", "b", "c", "d"], [50, 7, 3, 40])
    for test_size in (0.1, 0.25, 0.5, 0.9, 13):
        _, _, _, y_test = train_test_split(np.zeros((100, 1)), y, test_size=test_size, seed=0)
        n_test = test_size if isinstance(test_size, int) else math.ceil(test_size * 100)
        assert len(y_test) == n_test
        for label, count in zip("abcd", (50, 7, 3, 40)):
            assert abs(np.sum(y_test == label) - count * n_test / 100) < 1


def test_split_is_deterministic_and_accepts_a_generator(rng):
    X, y = np.arange(40).reshape(20, 2), np.arange(20) % 2
    first, second = train_test_split(X, y, seed=5), train_test_split(X, y, seed=5)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    from_generator = train_test_split(X, y, seed=np.random.default_rng(5))
    for a, b in zip(first, from_generator):
        np.testing.assert_array_equal(a, b)
    plain = train_test_split(X, y, test_size=0.5, seed=5, stratify=False)
    assert len(plain[2]) == 10


@pytest.mark.parametrize(
    "kwargs,error,pattern",
    [
        ({"test_size": 0.0}, ValueError, r"must lie in \(0, 1\)"),
        ({"test_size": 1.0}, ValueError, r"must lie in \(0, 1\)"),
        ({"test_size": 10}, ValueError, "both parts need at least one row"),
        ({"test_size": 0}, ValueError, "both parts need at least one row"),
        ({"test_size": True}, TypeError, "test_size must be"),
        ({"test_size": "half"}, TypeError, "test_size must be"),
        ({"seed": None}, TypeError, "seed must be an integer or a numpy.random.Generator"),
        ({"seed": 1.5}, TypeError, "seed must be"),
        ({"stratify": "yes"}, TypeError, "stratify must be True or False"),
    ],
)
def test_split_argument_errors(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        train_test_split(np.zeros((10, 2)), np.arange(10) % 2, **kwargs)


def test_split_shape_errors():
    with pytest.raises(ValueError, match="same number of rows"):
        train_test_split(np.zeros((10, 2)), np.zeros(9))
    with pytest.raises(ValueError, match="y must be 1-D"):
        train_test_split(np.zeros((10, 2)), np.zeros((10, 1)))


# --- load_dataset ---------------------------------------------------------------------------


def test_load_dataset_digits():
    X_train, y_train, X_test, y_test, info = load_dataset("digits")
    assert info == {
        "name": "digits", "class_names": [str(d) for d in range(10)], "n_features": 64,
        "n_classes": 10, "image_shape": (8, 8),
    }
    np.testing.assert_array_equal(X_train, load_digits()[0])


def test_load_dataset_csv_and_npz(tmp_path, rng):
    rows = "\n".join(f"{i},{i * 2},{'ab'[i % 2]}" for i in range(20))
    path = write_text(tmp_path / "table.csv", "u,v,kind\n" + rows + "\n")
    X_train, y_train, X_test, y_test, info = load_dataset(path)  # no "label" column: the last one
    assert X_train.dtype == np.float32 and X_train.shape == (15, 2) and X_test.shape == (5, 2)
    assert info == {
        "name": "table.csv", "class_names": ["a", "b"], "n_features": 2, "n_classes": 2, "image_shape": None,
    }
    np.testing.assert_array_equal(X_train[:, 1], 2 * X_train[:, 0])
    np.testing.assert_array_equal(y_train, X_train[:, 0].astype(int) % 2)

    images = rng.integers(0, 255, (12, 4, 3), dtype=np.uint8)
    with open(tmp_path / "images.NPZ", "wb") as stream:  # np.savez would append ".npz" to the name
        np.savez(stream, X_train=images[:8], y_train=np.arange(8) % 3, X_test=images[8:], y_test=np.array([0, 1, 2, 4]))
    X_train, y_train, X_test, y_test, info = load_dataset(str(tmp_path / "images.NPZ"))
    assert X_train.shape == (8, 12) and X_test.shape == (4, 12) and y_test.dtype == np.int64
    np.testing.assert_array_equal(X_test, images[8:].reshape(4, 12))
    assert info["image_shape"] == (4, 3) and info["n_classes"] == 5 and info["class_names"][4] == "4"

    np.savez(tmp_path / "single.npz", X=rng.standard_normal((8, 2)), y=np.arange(8) % 2)
    X_train, y_train, X_test, y_test, info = load_dataset(tmp_path / "single.npz")
    assert len(X_train) == 6 and len(X_test) == 2 and info["image_shape"] is None


def test_load_dataset_errors(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="must be one of 'digits', 'mnist', 'fashion-mnist' or a path"):
        load_dataset("cifar10")
    with pytest.raises(FileNotFoundError):
        load_dataset(tmp_path / "absent.csv")
    with pytest.raises(TypeError, match="name_or_path must be a str or os.PathLike"):
        load_dataset(None)
    monkeypatch.delenv("CROSSENT_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(DatasetNotFoundError, match="download=False"):
        load_dataset("fashion-mnist", download=False)


@pytest.mark.skipif(not (SHARED_MNIST / "train-labels-idx1-ubyte.gz").is_file(), reason="no MNIST in ../shared")
def test_load_dataset_mnist_from_shared():
    X_train, y_train, X_test, y_test, info = load_dataset("MNIST", data_dir=SHARED_MNIST, download=False)
    assert X_train.shape == (60000, 784) and y_train[:3].tolist() == [5, 0, 4]
    assert info == {"name": "mnist", "class_names": [str(d) for d in range(10)], "n_features": 784,
                    "n_classes": 10, "image_shape": (28, 28)}
