"""MNIST and Fashion-MNIST from their IDX files: found locally, or downloaded once and verified.

Where the files are looked for, in this order (the first directory holding
all four files wins; for each root its ``<name>/`` subfolder is tried first,
then the root itself, ``<name>`` being ``mnist`` or ``fashion-mnist``):

1. the ``data_dir`` argument;
2. the directory named by the environment variable ``CROSSENT_DATA``;
3. the user cache, ``$XDG_CACHE_HOME/crossent/<name>`` or ``~/.cache/crossent/<name>``.

Each file may be gzip-compressed (``train-images-idx3-ubyte.gz``) or not
(``train-images-idx3-ubyte``). Both data sets use the same file names, so keep
them in separate ``mnist/`` and ``fashion-mnist/`` folders.

If no directory is complete and ``download=True``, the missing files are
downloaded into the cache from :data:`MIRRORS` (tried in order), each to a
temporary file that is checked and then moved into place with
:func:`os.replace`: a failed or corrupted download never leaves a file behind.
MNIST downloads are checked against the SHA-256 of the uncompressed files;
Fashion-MNIST downloads against the MD5 of the ``.gz`` files published in the
zalandoresearch/fashion-mnist README (no SHA-256 is published). Local files
are not hashed; they are validated by :func:`~crossent.datasets.read_idx` and
by the expected shapes (60000 and 10000 images of 28 x 28, labels 0..9).
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import urllib.request
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
from numpy.typing import DTypeLike, NDArray

from .._typing import FloatArray, PathLike
from .._validation import _describe
from .._io import atomic_output
from .idx import as_path, read_idx
from .preprocessing import check_loader_options, pixels_to_features

__all__ = [
    "load_mnist",
    "load_fashion_mnist",
    "DatasetNotFoundError",
    "MIRRORS",
    "MNIST_CLASSES",
    "FASHION_MNIST_CLASSES",
    "cache_directory",
]

ENVIRONMENT_VARIABLE = "CROSSENT_DATA"
#: seconds urllib waits for a mirror to respond (connect or read)
DOWNLOAD_TIMEOUT = 30.0

#: Base URLs tried in order; file URLs are ``<mirror>/<file>.gz``. Replace the
#: list (or pass ``mirrors=``) to use a local mirror, e.g. ``file:///srv/mnist/``.
MIRRORS = {
    "mnist": [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ],
    "fashion-mnist": [
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    ],
}

MNIST_CLASSES = tuple(str(digit) for digit in range(10))
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)

#: canonical file name -> number of examples it holds
FILES = {
    "train-images-idx3-ubyte": 60000,
    "train-labels-idx1-ubyte": 60000,
    "t10k-images-idx3-ubyte": 10000,
    "t10k-labels-idx1-ubyte": 10000,
}
IMAGE_SHAPE = (28, 28)


class Checksum(NamedTuple):
    """Expected digest of a download; ``covers`` is "content" (uncompressed IDX) or "download" (the .gz)."""

    algorithm: str
    hexdigest: str
    covers: str


_CHECKSUMS = {
    "mnist": {
        "train-images-idx3-ubyte": Checksum(
            "sha256", "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db", "content"
        ),
        "train-labels-idx1-ubyte": Checksum(
            "sha256", "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5", "content"
        ),
        "t10k-images-idx3-ubyte": Checksum(
            "sha256", "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7", "content"
        ),
        "t10k-labels-idx1-ubyte": Checksum(
            "sha256", "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2", "content"
        ),
    },
    # MD5 of the .gz files as published in the zalandoresearch/fashion-mnist README
    "fashion-mnist": {
        "train-images-idx3-ubyte": Checksum("md5", "8d4fb7e6c68d591d4c3dfef9ec88bf0d", "download"),
        "train-labels-idx1-ubyte": Checksum("md5", "25c81989df183df01b3e8a0aad5dffbe", "download"),
        "t10k-images-idx3-ubyte": Checksum("md5", "bef4ecab320f06d8554ea6380940ec79", "download"),
        "t10k-labels-idx1-ubyte": Checksum("md5", "bb300cfdad3c16e7a12a480ee83cd310", "download"),
    },
}
_TITLES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}


class DatasetNotFoundError(FileNotFoundError):
    """A data set's files are not on this machine and could not be downloaded.

    The message says which files to place in which directory.
    """


class _ChecksumMismatch(ValueError):
    pass


def cache_directory(name: str) -> Path:
    """``$XDG_CACHE_HOME/crossent/<name>``, or ``~/.cache/crossent/<name>`` (XDG unset, empty or relative)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".cache"
    return root / "crossent" / name


def _search_roots(name: str, data_dir: PathLike | None) -> list[tuple[str, Path]]:
    roots = []
    if data_dir is not None:
        roots.append(("data_dir", as_path(data_dir, "data_dir")))
    if os.environ.get(ENVIRONMENT_VARIABLE):
        roots.append((f"${ENVIRONMENT_VARIABLE}", Path(os.environ[ENVIRONMENT_VARIABLE])))
    roots.append(("cache", cache_directory(name)))
    return roots


def _candidates(name: str, roots: list[tuple[str, Path]]) -> list[tuple[str, Path]]:
    candidates = []
    for label, root in roots:
        if label != "cache":
            candidates.append((label, root / name))
        candidates.append((label, root))
    return candidates


def _located(directory: Path) -> dict[str, Path | None]:
    """Canonical file name -> the file in ``directory`` (plain preferred over .gz), or None."""
    found: dict[str, Path | None] = {}
    for base in FILES:
        for candidate in (directory / base, directory / f"{base}.gz"):
            if candidate.is_file():
                found[base] = candidate
                break
        else:
            found[base] = None
    return found


def _hash_stream(stream: Any, algorithm: str, decompress: bool) -> str:
    stream.seek(0)
    digest = hashlib.new(algorithm, usedforsecurity=False)
    source = gzip.GzipFile(fileobj=stream, mode="rb") if decompress else stream
    while chunk := source.read(1 << 20):
        digest.update(chunk)
    return digest.hexdigest()


def _fetch(url: str, destination: Path, checksum: Checksum) -> None:
    """Download ``url`` to ``destination`` atomically, or raise and leave nothing behind."""
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response, atomic_output(destination) as out:
        while chunk := response.read(1 << 20):
            out.write(chunk)
        actual = _hash_stream(out, checksum.algorithm, decompress=checksum.covers == "content")
        if actual != checksum.hexdigest:
            what = "uncompressed content" if checksum.covers == "content" else "download"
            raise _ChecksumMismatch(
                f"{checksum.algorithm} of the {what} is {actual}, expected {checksum.hexdigest}"
            )


def _download(name: str, directory: Path, missing: list[str], mirrors: Sequence[str]) -> list[str]:
    """Fetch the ``missing`` files into ``directory``; return the failures (empty on success)."""
    failures = []
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return [f"cannot create {directory}: {error}"]
    for base in missing:
        destination = directory / f"{base}.gz"
        for mirror in mirrors:
            url = f"{mirror.rstrip('/')}/{base}.gz"
            try:
                _fetch(url, destination, _CHECKSUMS[name][base])
                break
            except (OSError, ValueError, EOFError, zlib.error, http.client.HTTPException) as error:
                failures.append(f"{url}: {type(error).__name__}: {error}")
        else:
            # Every mirror failed for this file; the others would most likely fail the same way.
            return failures
    return []


def _not_found(
    name: str, roots: list[tuple[str, Path]], candidates: list[tuple[str, Path]], download: bool, failures: list[str]
) -> DatasetNotFoundError:
    title = _TITLES[name]
    target_label, target = roots[0]
    missing_there = [base for base, path in _located(target).items() if path is None]
    lines = [
        f"{title} files not found. Place these files in {target}"
        + ("" if target_label == "cache" else f" (or in its {name}/ subfolder)")
        + ":",
        *(f"    {base}.gz   (or uncompressed: {base})" for base in missing_there),
        f"or pass data_dir=<directory holding the four files> (--data-dir DIR on the command line), or set the "
        f"environment variable {ENVIRONMENT_VARIABLE} to that directory (a {name}/ subfolder inside it also works).",
        "Searched:",
    ]
    for label, directory in candidates:
        found = _located(directory)
        absent = [base for base, path in found.items() if path is None]
        if len(absent) == len(FILES):
            status = "no files" if directory.is_dir() else "does not exist"
        else:
            status = "missing " + ", ".join(absent)
        lines.append(f"    {directory} ({label}): {status}")
    if not download:
        lines.append("Not downloaded because download=False.")
    else:
        lines.append(f"Download into {cache_directory(name)} failed:")
        lines.extend(f"    {failure}" for failure in failures)
    return DatasetNotFoundError("\n".join(lines))


def _read_images(path: Path, count: int) -> np.ndarray:
    images = read_idx(path)
    if images.dtype != np.uint8 or images.shape != (count, *IMAGE_SHAPE):
        raise ValueError(
            f"{path}: expected uint8 images of shape ({count}, 28, 28) (IDX magic 2051), "
            f"got {images.dtype} of shape {images.shape}"
        )
    return images


def _read_labels(path: Path, count: int) -> np.ndarray:
    labels = read_idx(path)
    if labels.dtype != np.uint8 or labels.shape != (count,):
        raise ValueError(
            f"{path}: expected {count} uint8 labels (IDX magic 2049), got {labels.dtype} of shape {labels.shape}"
        )
    if labels.max(initial=0) > 9:
        position = int(np.argmax(labels > 9))
        raise ValueError(f"{path}: labels must lie in 0..9, found {labels[position]} at position {position}")
    return labels.astype(np.int64)


def _load(
    name: str, data_dir: PathLike | None, download: bool, dtype: DTypeLike, normalize: str,
    mirrors: Sequence[str] | None,
) -> tuple[FloatArray, NDArray[np.int64], FloatArray, NDArray[np.int64]]:
    float_dtype = check_loader_options(dtype, normalize)
    if not isinstance(download, bool):
        raise TypeError(f"download must be True or False, got {_describe(download)}")
    if mirrors is None:
        mirrors = MIRRORS[name]
    elif not isinstance(mirrors, (list, tuple)) or not all(isinstance(mirror, str) for mirror in mirrors):
        raise TypeError(f"mirrors must be a list of base URLs (str), got {_describe(mirrors)}")

    roots = _search_roots(name, data_dir)
    candidates = _candidates(name, roots)
    files = None
    for _, directory in candidates:
        found = _located(directory)
        if all(path is not None for path in found.values()):
            files = found
            break
    if files is None:
        cache = cache_directory(name)
        missing = [base for base, path in _located(cache).items() if path is None]
        failures = _download(name, cache, missing, mirrors) if download else []
        if not download or failures:
            raise _not_found(name, roots, candidates, download, failures)
        files = _located(cache)

    # every file is there: a complete directory, or the cache after a download without failures
    paths = {base: path for base, path in files.items() if path is not None}
    X_train = _read_images(paths["train-images-idx3-ubyte"], FILES["train-images-idx3-ubyte"])
    y_train = _read_labels(paths["train-labels-idx1-ubyte"], FILES["train-labels-idx1-ubyte"])
    X_test = _read_images(paths["t10k-images-idx3-ubyte"], FILES["t10k-images-idx3-ubyte"])
    y_test = _read_labels(paths["t10k-labels-idx1-ubyte"], FILES["t10k-labels-idx1-ubyte"])
    return (
        pixels_to_features(X_train, 255, float_dtype, normalize),
        y_train,
        pixels_to_features(X_test, 255, float_dtype, normalize),
        y_test,
    )


def load_mnist(
    data_dir: PathLike | None = None, *, download: bool = True, dtype: DTypeLike = np.float32,
    normalize: Literal["unit", "none"] = "unit", mirrors: Sequence[str] | None = None,
) -> tuple[FloatArray, NDArray[np.int64], FloatArray, NDArray[np.int64]]:
    """Load MNIST handwritten digits: 60000 training and 10000 test images of 28 x 28 pixels.

    Parameters
    ----------
    data_dir : str or os.PathLike, optional
        A directory holding the four files (or a ``mnist/`` subfolder with
        them). Looked at first; see the module docstring for the search order.
    download : bool, default True
        If no searched directory holds all four files, download the missing
        ones into the cache (SHA-256 checked). Otherwise raise.
    dtype : float32 or float64, default float32
    normalize : {"unit", "none"}, default "unit"
        "unit": pixel / 255 in [0, 1]. "none": the raw values 0..255 as ``dtype``.
        For standardisation fit :class:`~crossent.datasets.Normalizer` on X_train.
    mirrors : list of str, optional
        Base URLs to download from, in order; default :data:`MIRRORS` ``["mnist"]``.

    Returns
    -------
    X_train : (60000, 784) ``dtype``
    y_train : (60000,) int64, labels 0..9
    X_test : (10000, 784) ``dtype``
    y_test : (10000,) int64

    Raises
    ------
    DatasetNotFoundError
        The files are not found and cannot be downloaded (offline, download
        failed or checksum mismatch, or ``download=False``). The message lists
        the files and where to put them.
    ValueError
        A file is found but is not valid MNIST data (damaged, wrong shape).

    Examples
    --------
    >>> from crossent.datasets import load_mnist
    >>> X_train, y_train, X_test, y_test = load_mnist("../shared/data/mnist")  # doctest: +SKIP
    >>> X_train.shape, X_train.dtype, y_train[:10]  # doctest: +SKIP
    ((60000, 784), dtype('float32'), array([5, 0, 4, 1, 9, 2, 1, 3, 1, 4]))
    """
    return _load("mnist", data_dir, download, dtype, normalize, mirrors)


def load_fashion_mnist(
    data_dir: PathLike | None = None, *, download: bool = True, dtype: DTypeLike = np.float32,
    normalize: Literal["unit", "none"] = "unit", mirrors: Sequence[str] | None = None,
) -> tuple[FloatArray, NDArray[np.int64], FloatArray, NDArray[np.int64]]:
    """Load Fashion-MNIST (Zalando): 60000 training and 10000 test 28 x 28 images of clothing.

    Same files, layout, search order and return values as :func:`load_mnist`
    (the subfolder is ``fashion-mnist/``); class names are in
    :data:`FASHION_MNIST_CLASSES`. Downloads are checked against the MD5 of the
    ``.gz`` files published by zalandoresearch/fashion-mnist.

    Examples
    --------
    >>> from crossent.datasets import load_fashion_mnist
    >>> X_train, y_train, X_test, y_test = load_fashion_mnist()  # doctest: +SKIP
    """
    return _load("fashion-mnist", data_dir, download, dtype, normalize, mirrors)
