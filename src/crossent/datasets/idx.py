"""Read and write IDX files, the format of MNIST and Fashion-MNIST, with full validation.

An IDX file is a header followed by the array's items in C order, all big-endian:

====================  ==========================================================
bytes 0-1             zero
byte 2                data type code: 0x08 uint8, 0x09 int8, 0x0B int16,
                      0x0C int32, 0x0D float32, 0x0E float64
byte 3                number of dimensions ``d`` (at least 1)
bytes 4 .. 4 + 4d     ``d`` sizes, unsigned 32-bit integers
then                  ``prod(sizes) * itemsize`` bytes of data, nothing more
====================  ==========================================================

So MNIST's images start with the magic number 2051 (``00 00 08 03``: uint8, 3
dimensions) and its labels with 2049 (``00 00 08 01``). Files may be
gzip-compressed; :func:`read_idx` recognises gzip by its magic bytes ``1f 8b``,
not by the file name.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .._io import atomic_output
from .._typing import PathLike
from .._validation import _describe

__all__ = ["read_idx", "write_idx"]

GZIP_MAGIC = b"\x1f\x8b"

#: IDX data type code -> dtype of the items as stored (big-endian)
IDX_DTYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_TYPE_CODES = {(dtype.kind, dtype.itemsize): code for code, dtype in IDX_DTYPES.items()}
_KNOWN_TYPES = ", ".join(
    f"0x{code:02X} ({dtype.newbyteorder('=').name})" for code, dtype in IDX_DTYPES.items()
)

# Deflate cannot expand data by more than about 1032:1, so a gzip file of S bytes
# holds at most this many bytes per byte; a header asking for more is truncated,
# which we can say without allocating the array it describes.
_MAX_DEFLATE_RATIO = 1032
_CHUNK = 1 << 20


def as_path(path: object, name: str = "path") -> Path:
    """Return ``path`` (a ``str`` or ``os.PathLike``) as a :class:`~pathlib.Path`, or raise TypeError."""
    if isinstance(path, (str, os.PathLike)):
        return Path(path)
    raise TypeError(f"{name} must be a str or os.PathLike, got {_describe(path)}")


def _read_up_to(stream: Any, size: int) -> bytes:
    data = stream.read(size)
    return data if data is not None else b""


def _read_into(stream: Any, buffer: memoryview) -> int:
    filled = 0
    while filled < len(buffer):
        count = stream.readinto(buffer[filled:])
        if not count:
            break
        filled += count
    return filled


def _count_remaining(stream: Any) -> int:
    total = 0
    while chunk := stream.read(_CHUNK):
        total += len(chunk)
    return total


def _length_error(
    path: Path, content: str, shape: tuple[int, ...], dtype: np.dtype[Any], expected: int, actual: int
) -> ValueError:
    problem = "truncated" if actual < expected else "trailing bytes after the data"
    return ValueError(
        f"{path}: {problem}: an IDX header for shape {shape} of {dtype.newbyteorder('=').name} "
        f"needs exactly {expected} bytes, the {content} has {actual} bytes"
    )


def _read_stream(stream: Any, path: Path, content: str, capacity: int, exact: bool) -> np.ndarray:
    """Parse an IDX byte stream of at most ``capacity`` bytes (exactly that many if ``exact``)."""
    magic = _read_up_to(stream, 4)
    if len(magic) < 4:
        raise ValueError(
            f"{path}: the {content} has {len(magic)} bytes, too short for an IDX magic number (4 bytes)"
        )
    if magic[0] != 0 or magic[1] != 0:
        raise ValueError(
            f"{path} is not an IDX file: its magic number {magic.hex(' ')} must start with two zero bytes"
        )
    code, ndim = magic[2], magic[3]
    if code not in IDX_DTYPES:
        raise ValueError(
            f"{path}: unknown IDX data type code 0x{code:02X} in the magic number {magic.hex(' ')}; "
            f"known codes are {_KNOWN_TYPES}"
        )
    if ndim == 0:
        raise ValueError(f"{path}: the IDX magic number {magic.hex(' ')} declares 0 dimensions, at least 1 is needed")
    header_size = 4 + 4 * ndim
    size_bytes = _read_up_to(stream, 4 * ndim)
    if len(size_bytes) < 4 * ndim:
        raise ValueError(
            f"{path}: truncated header: {ndim} dimension sizes need {header_size} header bytes, "
            f"the {content} has {4 + len(size_bytes)} bytes"
        )
    shape = tuple(int(size) for size in np.frombuffer(size_bytes, dtype=">u4"))
    stored_dtype = IDX_DTYPES[code]
    payload_size = math.prod(shape) * stored_dtype.itemsize
    expected = header_size + payload_size

    # Decide from the size alone when we can, before allocating what the header asks for.
    if exact and expected != capacity:
        raise _length_error(path, content, shape, stored_dtype, expected, capacity)
    if expected > capacity:
        actual = header_size + _count_remaining(stream)
        raise _length_error(path, content, shape, stored_dtype, expected, actual)

    # Read straight into the result (no intermediate bytes object), then swap
    # bytes in place if this machine is little-endian.
    array = np.empty(shape, dtype=stored_dtype.newbyteorder("="))
    received = _read_into(stream, array.reshape(-1).view(np.uint8).data)
    if received < payload_size:
        raise _length_error(path, content, shape, stored_dtype, expected, header_size + received)
    extra = _count_remaining(stream)
    if extra:
        raise _length_error(path, content, shape, stored_dtype, expected, expected + extra)
    if not stored_dtype.isnative:
        array.byteswap(inplace=True)
    return array


def read_idx(path: PathLike) -> np.ndarray:
    r"""Read an IDX file (plain or gzip-compressed) into a NumPy array.

    The header is validated completely: two zero bytes, a known data type
    code, at least one dimension, all dimension sizes present, and a payload of
    exactly :math:`\prod_i n_i \times \text{itemsize}` bytes -- a truncated file
    or trailing bytes are errors, not silently ignored. Gzip is recognised by
    the magic bytes ``1f 8b`` whatever the file is called.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    numpy.ndarray
        A new, writable array of the stored shape, in native byte order:
        uint8, int8, int16, int32, float32 or float64 by the type code.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        The content is not a valid IDX file or not a valid gzip stream; the
        message names the file and, for a length mismatch, the expected and
        the actual byte counts (of the decompressed content for gzip).

    Shapes
    ------
    As stored: MNIST images (60000, 28, 28), labels (60000,).

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> from crossent.datasets import read_idx, write_idx
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     file = pathlib.Path(folder) / "labels-idx1-ubyte.gz"
    ...     write_idx(file, np.array([5, 0, 4], dtype=np.uint8))
    ...     read_idx(file)
    array([5, 0, 4], dtype=uint8)
    """
    path = as_path(path)
    with open(path, "rb") as raw:
        file_size = os.fstat(raw.fileno()).st_size
        compressed = raw.read(2) == GZIP_MAGIC
        raw.seek(0)
        if not compressed:
            return _read_stream(raw, path, "file", file_size, exact=True)
        try:
            with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
                return _read_stream(
                    stream, path, "decompressed content", file_size * _MAX_DEFLATE_RATIO, exact=False
                )
        except (EOFError, zlib.error, gzip.BadGzipFile) as error:
            raise ValueError(f"{path}: damaged or truncated gzip data ({error})") from None


def write_idx(path: PathLike, array: ArrayLike, *, compress: bool | None = None) -> None:
    """Write ``array`` to ``path`` as an IDX file, atomically.

    The file is written next to ``path`` under a temporary name and moved
    into place with :func:`os.replace`, so a crash never leaves a partial file.

    Parameters
    ----------
    path : str or os.PathLike
    array : array_like
        uint8, int8, int16, int32, float32 or float64 (any byte order), at
        least one dimension, each size below 2**32.
    compress : bool, optional
        Gzip-compress the file. Default: when the name ends in ``.gz``. The
        gzip header carries no timestamp, so equal arrays give equal files.

    Examples
    --------
    See :func:`read_idx`.
    """
    path = as_path(path)
    if compress is not None and not isinstance(compress, bool):
        raise TypeError(f"compress must be True, False or None, got {_describe(compress)}")
    data = np.asarray(array)
    code = _TYPE_CODES.get((data.dtype.kind, data.dtype.itemsize))
    if code is None:
        raise TypeError(f"array must have an IDX data type ({_KNOWN_TYPES}), got dtype {data.dtype}")
    if not 1 <= data.ndim <= 255:
        raise ValueError(f"array must have 1 to 255 dimensions for IDX, got shape {data.shape}")
    if max(data.shape) >= 2**32:
        raise ValueError(f"IDX dimension sizes must be below 2**32, got shape {data.shape}")
    if compress is None:
        compress = path.name.endswith(".gz")
    header = bytes([0, 0, code, data.ndim]) + np.asarray(data.shape, dtype=">u4").tobytes()
    payload = np.ascontiguousarray(data, dtype=IDX_DTYPES[code]).tobytes()
    with atomic_output(path) as stream:
        if compress:
            with gzip.GzipFile(filename=path.name, mode="wb", fileobj=stream, mtime=0) as zipped:
                zipped.write(header)
                zipped.write(payload)
        else:
            stream.write(header)
            stream.write(payload)
