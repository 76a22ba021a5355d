r"""Feature scaling fitted on the training set, and a seeded (stratified) train/test split.

:class:`Normalizer` learns one affine map per feature, :math:`x' = (x - o_j) / s_j`,
from the training data only, and can be saved as plain JSON with the model
that was trained on its output, so the same map is applied at prediction time.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from .._typing import Seed
from .._validation import _describe, as_float_array

__all__ = ["Normalizer", "train_test_split"]

NORMALIZER_METHODS = ("none", "unit", "standardize")
LOADER_NORMALIZATIONS = ("none", "unit")
_ROW_BLOCK = 8192


def _feature_matrix(X: ArrayLike, name: str = "X") -> np.ndarray:
    features = as_float_array(X, name)
    if features.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array of shape (n_samples, n_features), got shape {features.shape}")
    return features


def _check_finite(features: np.ndarray, name: str) -> None:
    bad = ~np.isfinite(features)
    if bad.any():
        row, column = (int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{name} must be finite; found {features[row, column].item()!r} at row {row}, column {column}"
        )


def _column_mean_and_std(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # Two passes in float64 over blocks of rows: as accurate as np.std on a
    # float64 copy, without allocating one (MNIST would need 376 MB).
    n_rows = features.shape[0]
    total = np.zeros(features.shape[1])
    for start in range(0, n_rows, _ROW_BLOCK):
        total += features[start : start + _ROW_BLOCK].sum(axis=0, dtype=np.float64)
    mean = total / n_rows
    squares = np.zeros(features.shape[1])
    for start in range(0, n_rows, _ROW_BLOCK):
        deviation = features[start : start + _ROW_BLOCK].astype(np.float64) - mean
        squares += np.einsum("ij,ij->j", deviation, deviation)
    return mean, np.sqrt(squares / n_rows)


class Normalizer:
    r"""Scale features with statistics of the training set: :math:`x'_{ij} = (x_{ij} - o_j) / s_j`.

    Methods
    -------
    ``"none"``
        :math:`o = 0, s = 1` (nothing is learned; ``transform`` works unfitted).
    ``"unit"``
        One map for all features sending the training data's overall range
        :math:`[\min X, \max X]` to :math:`[0, 1]`: :math:`o_j = \min X`,
        :math:`s_j = \max X - \min X`. For images this keeps relative
        intensities (MNIST's 0..255 becomes :math:`x / 255`, like the loaders'
        ``normalize="unit"``); test data may fall slightly outside [0, 1].
    ``"standardize"`` (default)
        Per feature: :math:`o_j = \bar x_j` and :math:`s_j` the population
        standard deviation (``ddof=0``) over the training rows.

    A feature that is constant on the training set (zero variance, e.g. MNIST's
    border pixels) gets :math:`s_j = 1` and :math:`o_j` equal to that constant,
    so it maps to exactly 0 instead of 0/0; likewise ``"unit"`` uses
    :math:`s = 1` if every training value is equal. Statistics are computed in
    float64 and applied in the input's float dtype (float32 stays float32).

    Fit on the training split only: statistics from the test split would leak
    into the model. :meth:`to_state` / :meth:`from_state` save and restore the
    fitted map as JSON-serialisable Python objects.

    Parameters
    ----------
    method : {"none", "unit", "standardize"}, default "standardize"

    Attributes
    ----------
    offset, scale : numpy.ndarray of shape (n_features,) float64, or None before fit
    n_features : int or None

    Examples
    --------
    >>> import json, numpy as np
    >>> from crossent.datasets import Normalizer
    >>> train = np.array([[0.0, 5.0], [2.0, 5.0], [4.0, 5.0]])
    >>> normalizer = Normalizer("standardize").fit(train)
    >>> normalizer.transform(np.array([[2.0, 5.0], [6.0, 7.0]]))
    array([[0.        , 0.        ],
           [2.44948974, 2.        ]])
    >>> restored = Normalizer.from_state(json.loads(json.dumps(normalizer.to_state())))
    >>> restored.transform(train)[:, 0]
    array([-1.22474487,  0.        ,  1.22474487])
    """

    def __init__(self, method: Literal["none", "unit", "standardize"] = "standardize") -> None:
        if not isinstance(method, str) or method not in NORMALIZER_METHODS:
            expected = ", ".join(repr(m) for m in NORMALIZER_METHODS)
            raise ValueError(f"method must be one of {expected}, got {_describe(method)}")
        self.method = method
        self.offset: np.ndarray | None = None
        self.scale: np.ndarray | None = None
        self.n_features: int | None = None

    def __repr__(self) -> str:
        fitted = "" if self.n_features is None else f", n_features={self.n_features}"
        return f"Normalizer(method={self.method!r}{fitted})"

    @property
    def is_fitted(self) -> bool:
        return self.n_features is not None

    def fit(self, X: ArrayLike) -> "Normalizer":
        """Learn the offset and scale from training features ``X`` of shape (n_samples, n_features)."""
        features = _feature_matrix(X)
        if features.shape[0] == 0:
            raise ValueError("X must hold at least one row to fit a Normalizer, got shape (0, ...)")
        _check_finite(features, "X")
        n_features = features.shape[1]
        if self.method == "none":
            offset, scale = np.zeros(n_features), np.ones(n_features)
        elif self.method == "unit":
            low, high = float(features.min()), float(features.max())
            offset = np.full(n_features, low)
            scale = np.full(n_features, high - low if high > low else 1.0)
        else:
            offset, scale = _column_mean_and_std(features)
            low, high = features.min(axis=0), features.max(axis=0)
            # Exact test for constant columns: a computed std of 1e-17 is
            # rounding noise, and dividing by it would blow the noise up to O(1).
            constant = low == high
            offset[constant] = low[constant]
            scale[constant] = 1.0
        self.offset, self.scale, self.n_features = offset, scale, n_features
        return self

    def transform(self, X: ArrayLike) -> np.ndarray:
        """Return ``(X - offset) / scale`` as a new array in ``X``'s float dtype (ints become float64)."""
        features = _feature_matrix(X)
        if self.method == "none":
            if self.is_fitted:
                self._check_width(features)
            return features.copy()
        if not self.is_fitted:
            raise RuntimeError(
                f"this Normalizer(method={self.method!r}) is not fitted yet: call fit(X_train) first"
            )
        self._check_width(features)
        offset, scale = self.offset, self.scale
        assert offset is not None and scale is not None  # set together with n_features
        dtype = features.dtype
        result = features - offset.astype(dtype)
        result /= scale.astype(dtype)
        return result

    def fit_transform(self, X: ArrayLike) -> np.ndarray:
        """``fit(X).transform(X)``."""
        return self.fit(X).transform(X)

    def _check_width(self, features: np.ndarray) -> None:
        if features.shape[1] != self.n_features:
            raise ValueError(
                f"X has {features.shape[1]} features, but this Normalizer was fitted on {self.n_features}"
            )

    def to_state(self) -> dict[str, Any]:
        """The configuration and fitted statistics as JSON-serialisable Python objects.

        ``{"method": str, "n_features": int | None, "offset": list[float] | None,
        "scale": list[float] | None}``; floats round-trip exactly through JSON.
        """
        return {
            "method": self.method,
            "n_features": self.n_features,
            "offset": None if self.offset is None else [float(v) for v in self.offset],
            "scale": None if self.scale is None else [float(v) for v in self.scale],
        }

    @classmethod
    def from_state(cls, state: object) -> "Normalizer":
        """Rebuild a Normalizer from :meth:`to_state`'s output (after a JSON round trip)."""
        if not isinstance(state, dict):
            raise TypeError(f"state must be a dict from Normalizer.to_state(), got {_describe(state)}")
        missing = [key for key in ("method", "n_features", "offset", "scale") if key not in state]
        if missing:
            raise ValueError(f"state lacks the key(s) {', '.join(missing)}; got keys {sorted(state)}")
        normalizer = cls(state["method"])
        n_features = state["n_features"]
        if n_features is None:
            if state["offset"] is not None or state["scale"] is not None:
                raise ValueError("state has offset/scale but n_features is None")
            return normalizer
        if isinstance(n_features, bool) or not isinstance(n_features, numbers.Integral) or n_features < 1:
            raise ValueError(f"state['n_features'] must be a positive integer, got {_describe(n_features)}")
        arrays = {}
        for key in ("offset", "scale"):
            try:
                values = np.asarray(state[key], dtype=np.float64)
            except (TypeError, ValueError):
                raise ValueError(f"state[{key!r}] must be a list of numbers, got {_describe(state[key])}") from None
            if values.shape != (n_features,) or not np.isfinite(values).all():
                raise ValueError(
                    f"state[{key!r}] must be {n_features} finite numbers, got {_describe(state[key])}"
                )
            arrays[key] = values
        if (arrays["scale"] <= 0).any():
            raise ValueError(f"state['scale'] must be positive, got {_describe(state['scale'])}")
        normalizer.offset, normalizer.scale = arrays["offset"], arrays["scale"]
        normalizer.n_features = int(n_features)
        return normalizer


def _test_count(test_size: float, n_samples: int) -> int:
    if isinstance(test_size, bool) or not isinstance(test_size, numbers.Real):
        raise TypeError(f"test_size must be a fraction in (0, 1) or a number of rows, got {_describe(test_size)}")
    if isinstance(test_size, numbers.Integral):
        count = int(test_size)
    else:
        if not 0.0 < test_size < 1.0:
            raise ValueError(f"test_size as a fraction must lie in (0, 1), got {test_size!r}")
        count = math.ceil(test_size * n_samples)
    if not 1 <= count <= n_samples - 1:
        raise ValueError(
            f"test_size={test_size!r} gives {count} test rows out of {n_samples}; "
            f"both parts need at least one row"
        )
    return count


def _generator(seed: object) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an integer or a numpy.random.Generator, got {_describe(seed)}")
    return np.random.default_rng(int(seed))


def train_test_split(
    X: ArrayLike, y: ArrayLike, test_size: float = 0.25, seed: Seed = 0, stratify: bool = True
) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any], NDArray[Any]]:
    r"""Split rows into a training and a test part, shuffled with ``seed``.

    With ``stratify=True`` every class keeps its share: the test part has
    :math:`k_c` rows of class :math:`c`, where :math:`k_c` is
    :math:`n_c \cdot n_\text{test} / n` rounded down, and the rows left over to
    reach :math:`n_\text{test}` go to the classes with the largest remainders
    (ties to the smaller class value). So each :math:`k_c` is within 1 of its
    exact share and :math:`\sum_c k_c = n_\text{test}` exactly. A class with
    very few rows may end up only in the training part.

    Parameters
    ----------
    X : array_like, shape (n_samples, ...)
    y : array_like, shape (n_samples,)
        Class labels (any sortable dtype) used for stratification.
    test_size : float in (0, 1) or int, default 0.25
        Fraction of rows (rounded up, as scikit-learn does) or number of rows.
    seed : int or numpy.random.Generator, default 0
        Same seed, same split. A Generator is advanced.
    stratify : bool, default True

    Returns
    -------
    X_train, y_train, X_test, y_test
        New arrays, rows shuffled. Note the order: the loaders' order, not
        scikit-learn's ``X_train, X_test, y_train, y_test``.

    Examples
    --------
    >>> import numpy as np
    >>> from crossent.datasets import train_test_split
    >>> X = np.arange(20).reshape(10, 2)
    >>> y = np.array([0] * 6 + [1] * 4)
    >>> X_train, y_train, X_test, y_test = train_test_split(X, y, test_size=0.5, seed=0)
    >>> np.bincount(y_test).tolist(), np.bincount(y_train).tolist()
    ([3, 2], [3, 2])
    """
    if not isinstance(stratify, (bool, np.bool_)):
        raise TypeError(f"stratify must be True or False, got {_describe(stratify)}")
    features, labels = np.asarray(X), np.asarray(y)
    if labels.ndim != 1:
        raise ValueError(f"y must be 1-D (one label per row), got shape {labels.shape}")
    if features.ndim == 0 or features.shape[0] != labels.shape[0]:
        raise ValueError(f"X and y must have the same number of rows, got X {features.shape} and y {labels.shape}")
    n_samples = labels.shape[0]
    n_test = _test_count(test_size, n_samples)
    rng = _generator(seed)

    if not stratify:
        order = rng.permutation(n_samples)
        test_rows, train_rows = order[:n_test], order[n_test:]
    else:
        _, class_of_row = np.unique(labels, return_inverse=True)
        counts = np.bincount(class_of_row)
        shares = counts * (n_test / n_samples)
        test_counts = np.floor(shares).astype(np.int64)
        leftover = n_test - int(test_counts.sum())
        largest_remainders = np.argsort(-(shares - test_counts), kind="stable")[:leftover]
        test_counts[largest_remainders] += 1
        rows_by_class = np.split(np.argsort(class_of_row, kind="stable"), np.cumsum(counts)[:-1])
        test_parts, train_parts = [], []
        for rows, count in zip(rows_by_class, test_counts):
            rows = rng.permutation(rows)
            test_parts.append(rows[:count])
            train_parts.append(rows[count:])
        test_rows = rng.permutation(np.concatenate(test_parts))
        train_rows = rng.permutation(np.concatenate(train_parts))
    return features[train_rows], labels[train_rows], features[test_rows], labels[test_rows]


def check_loader_options(dtype: DTypeLike, normalize: object) -> np.dtype:
    """Validate a loader's ``dtype`` (float32/float64) and ``normalize`` ("none"/"unit")."""
    try:
        float_dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be float32 or float64, got {_describe(dtype)}") from None
    if float_dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {float_dtype}")
    if not isinstance(normalize, str) or normalize not in LOADER_NORMALIZATIONS:
        if isinstance(normalize, str) and normalize == "standardize":
            raise ValueError(
                "normalize='standardize' is not done by the loaders: load with normalize='none' or "
                "'unit', then fit crossent.datasets.Normalizer('standardize') on X_train and keep its "
                "to_state() with the model"
            )
        raise ValueError(f"normalize must be 'none' or 'unit', got {_describe(normalize)}")
    return float_dtype


def pixels_to_features(pixels: np.ndarray, max_value: int, dtype: np.dtype, normalize: str) -> np.ndarray:
    """(N, ...) integer pixels -> (N, n_pixels) of ``dtype``, divided by ``max_value`` for "unit".

    One pass: ``np.divide`` casts and divides into the output buffer (no
    intermediate float copy), and division (not multiplication by a rounded
    reciprocal) gives the correctly rounded ``v / max_value``.
    """
    flat = pixels.reshape(pixels.shape[0], -1)
    if normalize == "none":
        return flat.astype(dtype)
    features = np.empty(flat.shape, dtype=dtype)
    np.divide(flat, dtype.type(max_value), out=features, dtype=dtype)
    return features
