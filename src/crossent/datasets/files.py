"""Data sets from your own CSV and NPZ files, and :func:`load_dataset`, one entry point for all data sets."""

from __future__ import annotations

import csv
import numbers
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import DTypeLike, NDArray

from .._typing import FloatArray, PathLike
from .._validation import _describe
from .digits import DIGITS_CLASSES, DIGITS_IMAGE_SHAPE, load_digits
from .idx import as_path
from .mnist import FASHION_MNIST_CLASSES, IMAGE_SHAPE, MNIST_CLASSES, load_fashion_mnist, load_mnist
from .preprocessing import train_test_split

__all__ = ["load_csv", "load_npz", "load_dataset", "DATASET_NAMES"]

DATASET_NAMES = ("digits", "mnist", "fashion-mnist")
SPLIT_KEYS = ("X_train", "y_train", "X_test", "y_test")
SINGLE_KEYS = ("X", "y")
# rows converted to float per block: bounds the memory held as Python strings
_ROW_BLOCK = 4096


def _existing_file(path: PathLike, kind: str) -> Path:
    path = as_path(path)
    if not path.is_file():
        problem = "is a directory" if path.is_dir() else "does not exist"
        raise FileNotFoundError(f"{kind} file {path} {problem}")
    return path


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _check_target(target: object) -> str | int | None:
    if target is None or isinstance(target, str):
        return target
    if isinstance(target, bool) or not isinstance(target, numbers.Integral):
        raise TypeError(f"target must be a column name (str), a column index (int) or None, got {_describe(target)}")
    return int(target)


def _target_column(target: str | int | None, names: list[str], has_header: bool, path: Path, line: int) -> int:
    n_columns = len(names)
    if target is None:
        return names.index("label") if has_header and "label" in names else n_columns - 1
    if isinstance(target, str):
        if not has_header:
            raise ValueError(f"target={target!r} is a column name, but {path} is read without a header (header=False)")
        if target not in names:
            raise ValueError(
                f"target column {target!r} not found in the header of {path} (line {line}); "
                f"columns are: {', '.join(repr(name) for name in names)}"
            )
        return names.index(target)
    if not -n_columns <= target < n_columns:
        raise ValueError(f"target={target} is out of range for {path}, which has {n_columns} columns")
    return target % n_columns


def _encode_labels(labels: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Class labels as int64 in [0, K) and the K class names.

    Non-negative integers stay as they are (class c is named "c"); other
    numbers are numbered in numeric order (labels equal as numbers are one
    class), anything else in sorted text order.
    """
    try:
        integers = labels.astype(np.int64)
    except (ValueError, OverflowError):
        integers = None
    if integers is not None and integers.min() >= 0:
        return integers, [str(c) for c in range(int(integers.max()) + 1)]
    try:
        sort_key = labels.astype(np.float64)
    except (ValueError, OverflowError):
        sort_key = labels
    _, first_rows, codes = np.unique(sort_key, return_index=True, return_inverse=True)
    return codes.astype(np.int64), [str(labels[row]) for row in first_rows]


def _convert_block(
    rows: list[list[str]], line_numbers: list[int], feature_columns: list[int], names: list[str], path: Path,
    dtype: DTypeLike,
) -> np.ndarray:
    try:
        block = np.array(rows, dtype=np.float64)
    except ValueError:
        block = None
    if block is not None and np.isfinite(block).all():
        return block.astype(dtype, copy=False)
    # Slow path: say exactly where a bad value is, else parse with Python's
    # float(), which accepts a few spellings NumPy's parser does not.
    for row, line in zip(rows, line_numbers):
        for value, column in zip(row, feature_columns):
            number = float(value) if _is_number(value) else None
            if number is None or not np.isfinite(number):
                reason = "is not a number" if number is None else "is not finite"
                raise ValueError(
                    f"{path}, line {line}, column {column + 1} ({names[column]!r}): "
                    f"feature value {value!r} {reason}"
                )
    return np.array([[float(value) for value in row] for row in rows], dtype=dtype)


def load_csv(
    path: PathLike, target: str | int | None = "label", *, delimiter: str = ",",
    header: bool | Literal["auto"] = "auto", dtype: DTypeLike = np.float64,
) -> tuple[FloatArray, NDArray[np.int64], list[str]]:
    """Read a CSV file of numeric features and one column of class labels.

    Parameters
    ----------
    path : str or os.PathLike
        UTF-8 text (a byte-order mark is ignored); fields may be quoted. Blank
        lines are skipped.
    target : str, int or None, default "label"
        The label column: a header name, or a column index (negative counts
        from the end). ``None``: the column named "label" if there is one,
        otherwise the last column.
    delimiter : str, default ","
        One character.
    header : "auto", True or False, default "auto"
        Whether the first row holds column names. "auto": yes when ``target``
        is a name, or when any field of the first row outside the label
        column is not a number (so numeric column names need ``header=True``).
    dtype : float32 or float64, default float64

    Returns
    -------
    X : (n_samples, n_features) ``dtype``
        Every other column, in file order.
    y : (n_samples,) int64
        Class indices. Labels that are all non-negative integers are kept
        as they are; otherwise the distinct labels are numbered 0..K-1 in
        sorted order (numeric order when they are all numbers).
    class_names : list of str
        ``class_names[k]`` is the label text of class ``k`` (``"0"``, ``"1"``,
        ... for integer labels).

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        No data rows, no feature column, target column not found (the message
        lists the columns), a row with the wrong number of fields (line
        number), a feature value that is not a finite number or an empty label
        (line and column).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from crossent.datasets import load_csv
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     file = pathlib.Path(folder) / "flowers.csv"
    ...     _ = file.write_text("length,width,label\\n5.1,3.5,setosa\\n7.0,3.2,versicolor\\n")
    ...     X, y, class_names = load_csv(file)
    >>> X, y, class_names
    (array([[5.1, 3.5],
           [7. , 3.2]]), array([0, 1]), ['setosa', 'versicolor'])
    """
    path = _existing_file(path, "CSV")
    target = _check_target(target)
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise ValueError(f"delimiter must be a single character, got {_describe(delimiter)}")
    if not (header == "auto" if isinstance(header, str) else isinstance(header, bool)):
        raise ValueError(f"header must be 'auto', True or False, got {_describe(header)}")
    float_dtype = np.dtype(dtype)
    if float_dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {float_dtype}")

    with open(path, newline="", encoding="utf-8-sig") as stream:
        reader = csv.reader(stream, delimiter=delimiter)
        try:
            return _parse_csv(reader, path, target, header, float_dtype)
        except UnicodeDecodeError as error:
            raise ValueError(f"{path} is not UTF-8 text ({error})") from None
        except csv.Error as error:
            raise ValueError(f"{path}, line {reader.line_num}: {error}") from None


def _parse_csv(
    reader: Any, path: Path, target: str | int | None, header: bool | Literal["auto"],
    float_dtype: np.dtype[Any],
) -> tuple[FloatArray, NDArray[np.int64], list[str]]:
    rows = ((reader.line_num, row) for row in reader if row)
    first = next(rows, None)
    if first is None:
        raise ValueError(f"{path} holds no rows")
    first_line, first_row = first
    n_columns = len(first_row)
    stripped = [value.strip() for value in first_row]
    if header != "auto":
        has_header = header
    elif isinstance(target, str):
        has_header = True  # a column name needs a header
    else:
        if target is None:
            guessed_label: int | None = stripped.index("label") if "label" in stripped else n_columns - 1
        else:
            guessed_label = target % n_columns if -n_columns <= target < n_columns else None
        has_header = any(
            not _is_number(value) for column, value in enumerate(stripped) if column != guessed_label
        )
    names = stripped if has_header else [f"column {c + 1}" for c in range(n_columns)]
    label_column = _target_column(target, names, has_header, path, first_line)
    feature_columns = [c for c in range(n_columns) if c != label_column]
    if not feature_columns:
        raise ValueError(f"{path} has only the label column; at least one feature column is needed")

    data_rows = rows if has_header else _prepend(first, rows)
    blocks, labels = [], []
    block, block_lines = [], []
    for line, row in data_rows:
        if len(row) != n_columns:
            raise ValueError(
                f"{path}, line {line}: {len(row)} fields, expected {n_columns} as in line {first_line}"
            )
        label = row[label_column].strip()
        if not label:
            raise ValueError(f"{path}, line {line}, column {label_column + 1} ({names[label_column]!r}): empty label")
        labels.append(label)
        block.append([row[c] for c in feature_columns])
        block_lines.append(line)
        if len(block) == _ROW_BLOCK:
            blocks.append(_convert_block(block, block_lines, feature_columns, names, path, float_dtype))
            block, block_lines = [], []
    if block:
        blocks.append(_convert_block(block, block_lines, feature_columns, names, path, float_dtype))
    if not labels:
        raise ValueError(f"{path} has a header but no data rows")
    y, class_names = _encode_labels(np.array(labels))
    return np.concatenate(blocks), y, class_names


def _prepend(first: tuple[int, list[str]], rest: Iterator[tuple[int, list[str]]]) -> Iterator[tuple[int, list[str]]]:
    yield first
    yield from rest


def _read_member(archive: Any, key: str, path: Path) -> np.ndarray:
    try:
        return archive[key]
    except ValueError as error:
        raise ValueError(f"{path}: array {key!r} cannot be read without pickle ({error})") from None


def _check_pair(X: np.ndarray, y: np.ndarray, x_key: str, y_key: str, path: Path) -> None:
    if X.dtype.kind not in "biuf" or X.ndim < 2:
        raise ValueError(
            f"{path}: {x_key} must be a numeric array of shape (n_samples, n_features...), "
            f"got {X.dtype} of shape {X.shape}"
        )
    if y.dtype.kind not in "iu" or y.ndim != 1:
        raise ValueError(
            f"{path}: {y_key} must be a 1-D array of integer class labels, got {y.dtype} of shape {y.shape}"
        )
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"{path}: {x_key} has {X.shape[0]} rows but {y_key} has {y.shape[0]} labels")
    if y.size and y.min() < 0:
        raise ValueError(f"{path}: {y_key} must hold class labels >= 0, found {int(y.min())}")


def load_npz(path: PathLike) -> dict[str, Any]:
    """Read a NumPy ``.npz`` archive holding a labelled data set.

    The archive holds either ``X`` and ``y`` (one set, split it yourself with
    :func:`~crossent.datasets.train_test_split`) or all four of ``X_train``,
    ``y_train``, ``X_test``, ``y_test``; optionally ``class_names`` (strings).
    Other arrays are ignored. Pickled (object) arrays are refused.

    Returns
    -------
    dict
        ``{"X", "y"}`` or ``{"X_train", "y_train", "X_test", "y_test"}``, as
        stored, plus ``"class_names"`` (list of str) if present. ``X`` arrays
        are numeric with at least 2 dimensions (images may stay (N, H, W));
        ``y`` arrays are 1-D integers >= 0 with one label per row.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        Not an ``.npz`` archive, neither key set present (the message lists the
        keys found), both present, or arrays of the wrong kind or length.

    Examples
    --------
    >>> import numpy as np, pathlib, tempfile
    >>> from crossent.datasets import load_npz
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     file = pathlib.Path(folder) / "points.npz"
    ...     np.savez(file, X=np.zeros((3, 2)), y=np.array([0, 1, 1]))
    ...     data = load_npz(file)
    >>> sorted(data), data["X"].shape
    (['X', 'y'], (3, 2))
    """
    path = _existing_file(path, "NPZ")
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile) as error:
        raise ValueError(f"{path} is not a NumPy .npz archive ({error})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"{path} holds a single array (.npy format); expected an .npz archive with X and y")
    with archive:
        keys = set(archive.files)
        has_split, has_single = set(SPLIT_KEYS) <= keys, set(SINGLE_KEYS) <= keys
        if has_split and has_single:
            raise ValueError(f"{path} holds both X/y and X_train/y_train/X_test/y_test; keep one of the two")
        if not (has_split or has_single):
            raise ValueError(
                f"{path} must hold arrays X and y, or X_train, y_train, X_test and y_test; "
                f"found {', '.join(sorted(keys)) or 'no arrays'}"
            )
        wanted = SPLIT_KEYS if has_split else SINGLE_KEYS
        data: dict[str, Any] = {key: _read_member(archive, key, path) for key in wanted}
        class_names = _read_member(archive, "class_names", path) if "class_names" in keys else None
    pairs = [("X_train", "y_train"), ("X_test", "y_test")] if has_split else [("X", "y")]
    for x_key, y_key in pairs:
        _check_pair(data[x_key], data[y_key], x_key, y_key, path)
    if has_split and data["X_train"].shape[1:] != data["X_test"].shape[1:]:
        raise ValueError(
            f"{path}: X_train rows have shape {data['X_train'].shape[1:]} but X_test rows "
            f"have shape {data['X_test'].shape[1:]}"
        )
    if class_names is not None:
        if class_names.dtype.kind != "U" or class_names.ndim != 1:
            raise ValueError(
                f"{path}: class_names must be a 1-D array of strings, got {class_names.dtype} of shape {class_names.shape}"
            )
        largest = max((int(data[y_key].max()) for _, y_key in pairs if data[y_key].size), default=-1)
        if largest >= len(class_names):
            raise ValueError(f"{path}: class_names has {len(class_names)} names but a label is {largest}")
        data["class_names"] = [str(name) for name in class_names]
    return data


def _named(
    name: str, data_dir: PathLike | None, download: bool
) -> tuple[tuple[FloatArray, NDArray[np.int64], FloatArray, NDArray[np.int64]], tuple[str, ...], tuple[int, int]]:
    if name == "digits":
        return load_digits(), DIGITS_CLASSES, DIGITS_IMAGE_SHAPE
    if name == "mnist":
        return load_mnist(data_dir, download=download), MNIST_CLASSES, IMAGE_SHAPE
    return load_fashion_mnist(data_dir, download=download), FASHION_MNIST_CLASSES, IMAGE_SHAPE


def load_dataset(
    name_or_path: PathLike, *, data_dir: PathLike | None = None, download: bool = True, target: str | int | None = None
) -> tuple[FloatArray, NDArray[np.int64], FloatArray, NDArray[np.int64], dict[str, Any]]:
    """Load a data set by name or from a file, split into training and test parts.

    ===================  ==========================================================
    ``name_or_path``     what is loaded
    ===================  ==========================================================
    ``"digits"``         :func:`load_digits` (shipped; 1347 / 450 rows)
    ``"mnist"``          :func:`load_mnist` (``data_dir``, ``download`` passed on)
    ``"fashion-mnist"``  :func:`load_fashion_mnist` (likewise)
    ``*.csv``            :func:`load_csv` with ``target`` (default: the
                         "label" column, else the last column)
    ``*.npz``            :func:`load_npz`
    ===================  ==========================================================

    Image data sets come scaled to [0, 1] (``normalize="unit"``). CSV and NPZ
    data come as stored. A CSV file, or an NPZ file with only ``X`` and ``y``,
    is split with :func:`train_test_split` (``test_size=0.25, seed=0``,
    stratified). NPZ images of shape (N, H, W, ...) are flattened to rows.

    Returns
    -------
    X_train, y_train, X_test, y_test
        X float32 of shape (n, n_features), y int64.
    info : dict
        ``name`` (str), ``class_names`` (list of str), ``n_features`` (int),
        ``n_classes`` (int), ``image_shape`` (tuple, or None for tabular data).

    Examples
    --------
    >>> from crossent.datasets import load_dataset
    >>> X_train, y_train, X_test, y_test, info = load_dataset("digits")
    >>> info["n_classes"], info["n_features"], info["image_shape"]
    (10, 64, (8, 8))
    """
    class_names: list[str]
    image_shape: tuple[int, ...] | None
    if isinstance(name_or_path, str) and name_or_path.lower() in DATASET_NAMES:
        name = name_or_path.lower()
        (X_train, y_train, X_test, y_test), known_classes, image_shape = _named(name, data_dir, download)
        class_names = list(known_classes)
    else:
        path = as_path(name_or_path, "name_or_path")
        suffix = path.suffix.lower()
        if suffix not in (".csv", ".npz"):
            raise ValueError(
                f"name_or_path must be one of {', '.join(repr(n) for n in DATASET_NAMES)} "
                f"or a path ending in .csv or .npz, got {_describe(name_or_path)}"
            )
        name, image_shape = path.name, None
        if suffix == ".csv":
            X, y, class_names = load_csv(path, target=target)
            X_train, y_train, X_test, y_test = train_test_split(X, y, test_size=0.25, seed=0)
        else:
            data = load_npz(path)
            if "X" in data:
                X_train, y_train, X_test, y_test = train_test_split(data["X"], data["y"], test_size=0.25, seed=0)
            else:
                X_train, y_train, X_test, y_test = (data[key] for key in SPLIT_KEYS)
            if X_train.ndim > 2:
                image_shape = tuple(X_train.shape[1:])
            n_classes = 1 + max(int(y_train.max(initial=0)), int(y_test.max(initial=0)))
            class_names = data.get("class_names", [str(c) for c in range(n_classes)])
        X_train = X_train.reshape(len(X_train), -1).astype(np.float32)
        X_test = X_test.reshape(len(X_test), -1).astype(np.float32)
        y_train, y_test = y_train.astype(np.int64), y_test.astype(np.int64)
    info = {
        "name": name,
        "class_names": class_names,
        "n_features": int(X_train.shape[1]),
        "n_classes": len(class_names),
        "image_shape": image_shape,
    }
    return X_train, y_train, X_test, y_test, info
