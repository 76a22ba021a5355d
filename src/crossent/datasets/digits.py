"""The 8 x 8 handwritten digits shipped with crossent (UCI optdigits, 1797 images), split with a seed.

Small enough to train on in well under a second, so examples and tests can use
real data without a download. Source and licence: ``data/README.md``.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Literal

import numpy as np
from numpy.typing import DTypeLike, NDArray

from .._typing import FloatArray, Seed
from .preprocessing import check_loader_options, pixels_to_features, train_test_split

__all__ = ["load_digits", "DIGITS_CLASSES"]

DIGITS_CLASSES = tuple(str(digit) for digit in range(10))
DIGITS_IMAGE_SHAPE = (8, 8)
_MAX_PIXEL = 16


@functools.cache
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The shipped (1797, 64) uint8 pixels and (1797,) labels, read once and made read-only."""
    with resources.files(__package__).joinpath("data", "digits.npz").open("rb") as stream:
        with np.load(stream, allow_pickle=False) as archive:
            pixels, labels = archive["X"], archive["y"]
    pixels.flags.writeable = False
    labels.flags.writeable = False
    return pixels, labels


def load_digits(
    *, test_size: float = 0.25, seed: Seed = 0, dtype: DTypeLike = np.float32,
    normalize: Literal["unit", "none"] = "unit",
) -> tuple[FloatArray, NDArray[np.int64], FloatArray, NDArray[np.int64]]:
    """Load the 8 x 8 digits, split into training and test parts stratified by class.

    1797 grey-scale images of the digits 0..9 (about 180 per class), pixel
    values 0..16: each is the count of ink pixels in a 4 x 4 block of a
    32 x 32 bitmap.

    Parameters
    ----------
    test_size : float in (0, 1) or int, default 0.25
        Fraction (rounded up) or number of test images; see
        :func:`~crossent.datasets.train_test_split`.
    seed : int or numpy.random.Generator, default 0
        Same seed, same split.
    dtype : float32 or float64, default float32
    normalize : {"unit", "none"}, default "unit"
        "unit": pixel / 16 in [0, 1]. "none": the raw values 0..16 as ``dtype``.

    Returns
    -------
    X_train : (n_train, 64) ``dtype``
    y_train : (n_train,) int64
    X_test : (n_test, 64) ``dtype``
    y_test : (n_test,) int64

    Examples
    --------
    >>> from crossent.datasets import load_digits
    >>> X_train, y_train, X_test, y_test = load_digits(seed=0)
    >>> X_train.shape, X_test.shape, X_train.dtype, float(X_train.max())
    ((1347, 64), (450, 64), dtype('float32'), 1.0)
    """
    float_dtype = check_loader_options(dtype, normalize)
    pixels, labels = _digits_arrays()
    pixels_train, y_train, pixels_test, y_test = train_test_split(
        pixels, labels.astype(np.int64), test_size=test_size, seed=seed, stratify=True
    )
    return (
        pixels_to_features(pixels_train, _MAX_PIXEL, float_dtype, normalize),
        y_train,
        pixels_to_features(pixels_test, _MAX_PIXEL, float_dtype, normalize),
        y_test,
    )
