"""MNIST / Fashion-MNIST loading: the real files in ../shared, the search order, and downloads from local mirrors.

This machine has no internet: downloads are tested with ``file://`` mirrors and
with a fake ``urllib.request.urlopen``. Every test gets its own empty cache
(``XDG_CACHE_HOME``) and no ``CROSSENT_DATA``.
"""

import gzip
import hashlib
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from crossent.datasets import DatasetNotFoundError, load_fashion_mnist, load_mnist, read_idx, write_idx
from crossent.datasets import mnist

SHARED_MNIST = Path(__file__).parents[2] / "shared" / "data" / "mnist"
FILE_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
needs_shared = pytest.mark.skipif(
    not all((SHARED_MNIST / f"{name}.gz").is_file() for name in FILE_NAMES),
    reason=f"the real MNIST files are not in {SHARED_MNIST}",
)
DEFAULT_MIRRORS = {name: list(urls) for name, urls in mnist.MIRRORS.items()}


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """An empty cache, no CROSSENT_DATA, and mirrors that cannot reach the network."""
    monkeypatch.delenv("CROSSENT_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    unreachable = (tmp_path / "no-mirror").as_uri() + "/"
    monkeypatch.setattr(mnist, "MIRRORS", {"mnist": [unreachable], "fashion-mnist": [unreachable]})


def cache_of(tmp_path, name="mnist"):
    return tmp_path / "xdg-cache" / "crossent" / name


@pytest.fixture(scope="module")
def blank_images(tmp_path_factory):
    """All-zero image files of MNIST's shapes, written once and hard-linked into each fake set."""
    folder = tmp_path_factory.mktemp("blank-images")
    write_idx(folder / "train-images-idx3-ubyte", np.zeros((60000, 28, 28), np.uint8))
    write_idx(folder / "t10k-images-idx3-ubyte", np.zeros((10000, 28, 28), np.uint8))
    return folder


def make_fake_set(directory: Path, blank_images: Path, label: int, skip=()):
    """A valid MNIST-shaped set whose labels are all ``label``, so a test can tell sets apart."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte"):
        if name not in skip:
            os.link(blank_images / name, directory / name)
    for name, count in (("train-labels-idx1-ubyte", 60000), ("t10k-labels-idx1-ubyte", 10000)):
        if name not in skip:
            write_idx(directory / f"{name}.gz", np.full(count, label, np.uint8))
    return directory


def loaded_label(**kwargs):
    return int(load_mnist(normalize="none", **kwargs)[1][0])


# --- the real MNIST ---------------------------------------------------------------------------


@needs_shared
def test_real_mnist_shapes_labels_and_statistics():
    X_train, y_train, X_test, y_test = load_mnist(SHARED_MNIST, download=False)
    assert X_train.shape == (60000, 784) and X_test.shape == (10000, 784)
    assert X_train.dtype == np.float32 and X_test.dtype == np.float32
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    assert y_train.dtype == np.int64 and y_test.dtype == np.int64
    assert y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert set(np.unique(y_train).tolist()) == set(range(10))
    assert X_train.min() == 0.0 and X_train.max() == 1.0
    assert abs(X_train.mean(dtype=np.float64) - 0.1307) < 5e-5
    assert abs(X_train.std(dtype=np.float64) - 0.3081) < 5e-5


@needs_shared
def test_real_mnist_pixels_match_an_independent_parse():
    raw = np.frombuffer(gzip.decompress((SHARED_MNIST / "t10k-images-idx3-ubyte.gz").read_bytes()), np.uint8, offset=16)
    labels = np.frombuffer(
        gzip.decompress((SHARED_MNIST / "train-labels-idx1-ubyte.gz").read_bytes()), np.uint8, offset=8
    )
    X_train, y_train, X_test, _ = load_mnist(SHARED_MNIST, download=False, dtype=np.float64, normalize="none")
    assert X_test.dtype == np.float64
    np.testing.assert_array_equal(X_test, raw.reshape(10000, 784))
    np.testing.assert_array_equal(y_train, labels)
    _, _, X_unit, _ = load_mnist(SHARED_MNIST, download=False)
    np.testing.assert_array_equal(X_unit, raw.reshape(10000, 784).astype(np.float32) / np.float32(255))


@needs_shared
def test_real_mnist_files_have_the_published_checksums():
    for name in FILE_NAMES:
        content = gzip.decompress((SHARED_MNIST / f"{name}.gz").read_bytes())
        assert hashlib.sha256(content).hexdigest() == mnist._CHECKSUMS["mnist"][name].hexdigest


# --- where the files are looked for --------------------------------------------------------


def test_search_order_is_argument_then_environment_then_cache(tmp_path, blank_images, monkeypatch):
    make_fake_set(tmp_path / "argument", blank_images, label=1)
    make_fake_set(tmp_path / "environment", blank_images, label=2)
    make_fake_set(cache_of(tmp_path), blank_images, label=3)
    monkeypatch.setenv("CROSSENT_DATA", str(tmp_path / "environment"))
    assert loaded_label(data_dir=tmp_path / "argument") == 1
    assert loaded_label(data_dir=str(tmp_path / "argument")) == 1
    assert loaded_label() == 2
    monkeypatch.delenv("CROSSENT_DATA")
    assert loaded_label() == 3


def test_environment_subfolder_per_data_set(tmp_path, blank_images, monkeypatch):
    root = tmp_path / "data"
    make_fake_set(root, blank_images, label=4)  # files directly in $CROSSENT_DATA
    make_fake_set(root / "mnist", blank_images, label=5)
    make_fake_set(root / "fashion-mnist", blank_images, label=6)
    monkeypatch.setenv("CROSSENT_DATA", str(root))
    assert loaded_label() == 5  # the data set's own subfolder comes first
    assert int(load_fashion_mnist(normalize="none")[1][0]) == 6
    shutil.rmtree(root / "mnist")
    assert loaded_label() == 4
    assert loaded_label(data_dir=root / "fashion-mnist") == 6


def test_incomplete_directory_is_skipped(tmp_path, blank_images, monkeypatch):
    make_fake_set(tmp_path / "argument", blank_images, label=1, skip=("t10k-labels-idx1-ubyte",))
    make_fake_set(tmp_path / "environment", blank_images, label=2)
    monkeypatch.setenv("CROSSENT_DATA", str(tmp_path / "environment"))
    assert loaded_label(data_dir=tmp_path / "argument") == 2


def test_uncompressed_and_compressed_files_mix(tmp_path, blank_images):
    folder = make_fake_set(tmp_path / "mixed", blank_images, label=7)
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    write_idx(folder / "t10k-labels-idx1-ubyte", np.full(10000, 8, np.uint8))
    _, y_train, _, y_test = load_mnist(folder, download=False)
    assert y_train[0] == 7 and y_test[0] == 8


def test_broken_local_file_is_an_error_not_skipped(tmp_path, blank_images, monkeypatch):
    folder = make_fake_set(tmp_path / "broken", blank_images, label=1)
    make_fake_set(tmp_path / "environment", blank_images, label=2)
    monkeypatch.setenv("CROSSENT_DATA", str(tmp_path / "environment"))
    content = gzip.decompress((folder / "train-labels-idx1-ubyte.gz").read_bytes())
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(content[:-1]))
    with pytest.raises(ValueError, match="train-labels-idx1-ubyte.gz: truncated"):
        load_mnist(folder)


@pytest.mark.parametrize(
    "name,array,pattern",
    [
        ("train-labels-idx1-ubyte.gz", np.zeros(59999, np.uint8), r"expected 60000 uint8 labels"),
        ("train-labels-idx1-ubyte.gz", np.zeros(60000, np.int32), r"expected 60000 uint8 labels"),
        ("t10k-labels-idx1-ubyte.gz", np.full(10000, 10, np.uint8), r"labels must lie in 0..9, found 10"),
        ("t10k-images-idx3-ubyte", np.zeros((10000, 784), np.uint8), r"shape \(10000, 28, 28\)"),
    ],
)
def test_files_of_the_wrong_shape_are_rejected(tmp_path, blank_images, name, array, pattern):
    folder = make_fake_set(tmp_path / "set", blank_images, label=0, skip=(name.removesuffix(".gz"),))
    write_idx(folder / name, array)
    with pytest.raises(ValueError, match=pattern) as error:
        load_mnist(folder, download=False)
    assert name in str(error.value)


# --- downloads ------------------------------------------------------------------------------


def mirror_of(folder: Path) -> str:
    return folder.as_uri() + "/"


@needs_shared
def test_download_from_a_mirror_into_the_cache(tmp_path):
    X_train, y_train, _, _ = load_mnist(mirrors=[mirror_of(SHARED_MNIST)])
    assert y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    cache = cache_of(tmp_path)
    assert sorted(p.name for p in cache.iterdir()) == sorted(f"{name}.gz" for name in FILE_NAMES)
    original = (SHARED_MNIST / "train-labels-idx1-ubyte.gz").read_bytes()
    assert (cache / "train-labels-idx1-ubyte.gz").read_bytes() == original
    # now cached: the mirrors are not needed any more
    np.testing.assert_array_equal(load_mnist(mirrors=[mirror_of(tmp_path / "nothing-here")])[0][:100], X_train[:100])


@needs_shared
def test_only_missing_files_are_downloaded_and_a_bad_mirror_is_skipped(tmp_path, monkeypatch):
    cache = cache_of(tmp_path)
    cache.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
        shutil.copy(SHARED_MNIST / f"{name}.gz", cache / f"{name}.gz")
    corrupted = tmp_path / "corrupted-mirror"
    corrupted.mkdir()
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        content = bytearray(gzip.decompress((SHARED_MNIST / f"{name}.gz").read_bytes()))
        content[-1] ^= 1  # one flipped bit: only the checksum can tell
        (corrupted / f"{name}.gz").write_bytes(gzip.compress(bytes(content), compresslevel=1))
    requested = []
    real_urlopen = urllib.request.urlopen

    def recording_urlopen(url, *args, **kwargs):
        requested.append(url)
        return real_urlopen(url, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", recording_urlopen)
    _, _, _, y_test = load_mnist(mirrors=[mirror_of(corrupted), mirror_of(SHARED_MNIST)])
    assert y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert [url.rsplit("/", 2)[-2:] for url in requested] == [
        ["corrupted-mirror", "t10k-images-idx3-ubyte.gz"],
        ["mnist", "t10k-images-idx3-ubyte.gz"],
        ["corrupted-mirror", "t10k-labels-idx1-ubyte.gz"],
        ["mnist", "t10k-labels-idx1-ubyte.gz"],
    ]


def test_checksum_mismatch_is_rejected_and_leaves_nothing_in_the_cache(tmp_path):
    fake_mirror = tmp_path / "fake-mirror"
    fake_mirror.mkdir()
    for name in FILE_NAMES:
        write_idx(fake_mirror / f"{name}.gz", np.zeros(3, np.uint8))
    with pytest.raises(DatasetNotFoundError) as error:
        load_mnist(mirrors=[mirror_of(fake_mirror)])
    message = str(error.value)
    assert "sha256 of the uncompressed content" in message
    assert mnist._CHECKSUMS["mnist"]["train-images-idx3-ubyte"].hexdigest in message
    assert list(cache_of(tmp_path).iterdir()) == []


class DroppedConnection:
    """A response that delivers one chunk and then loses the connection."""

    def __init__(self):
        self.reads = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def read(self, size=-1):
        self.reads += 1
        if self.reads > 1:
            raise ConnectionResetError("connection reset by peer")
        return b"\x1f\x8b" + bytes(1000)


def test_interrupted_download_leaves_nothing_in_the_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: DroppedConnection())
    with pytest.raises(DatasetNotFoundError, match="connection reset by peer"):
        load_mnist()
    assert list(cache_of(tmp_path).iterdir()) == []


def test_offline_error_says_which_files_go_where(tmp_path, monkeypatch):
    calls = []

    def offline(url, timeout):
        calls.append((url, timeout))
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    monkeypatch.setattr(mnist, "MIRRORS", DEFAULT_MIRRORS)
    with pytest.raises(DatasetNotFoundError) as error:
        load_mnist()
    assert isinstance(error.value, FileNotFoundError)
    assert calls == [
        ("https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz", mnist.DOWNLOAD_TIMEOUT),
        ("https://storage.googleapis.com/cvdf-datasets/mnist/train-images-idx3-ubyte.gz", mnist.DOWNLOAD_TIMEOUT),
    ]
    message = str(error.value)
    assert f"Place these files in {cache_of(tmp_path)}:" in message
    for name in FILE_NAMES:
        assert f"{name}.gz" in message
    assert "CROSSENT_DATA" in message and "data_dir=" in message
    assert "Temporary failure in name resolution" in message


def test_error_names_the_given_data_dir_and_what_it_lacks(tmp_path, blank_images):
    folder = make_fake_set(tmp_path / "mine", blank_images, label=0, skip=("t10k-images-idx3-ubyte",))
    with pytest.raises(DatasetNotFoundError) as error:
        load_mnist(folder, download=False)
    message = str(error.value)
    head = message.split("or pass data_dir")[0]
    assert f"Place these files in {folder} (or in its mnist/ subfolder):" in head
    assert "t10k-images-idx3-ubyte.gz" in head and "train-images-idx3-ubyte.gz" not in head
    assert f"{folder} (data_dir): missing t10k-images-idx3-ubyte" in message
    assert "download=False" in message


def test_download_false_never_touches_the_network(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("urlopen must not be called with download=False")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    with pytest.raises(DatasetNotFoundError, match="download=False"):
        load_fashion_mnist(download=False)


def test_fashion_downloads_are_checked_by_md5_of_the_gz(tmp_path, blank_images, monkeypatch):
    mirror = tmp_path / "fashion-mirror"
    mirror.mkdir()
    for name in ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte"):
        write_idx(mirror / f"{name}.gz", read_idx(blank_images / name))
    write_idx(mirror / "train-labels-idx1-ubyte.gz", np.full(60000, 9, np.uint8))
    write_idx(mirror / "t10k-labels-idx1-ubyte.gz", np.full(10000, 9, np.uint8))

    # with the published checksums these fakes are refused
    with pytest.raises(DatasetNotFoundError, match="md5 of the download is"):
        load_fashion_mnist(mirrors=[mirror_of(mirror)])
    assert list(cache_of(tmp_path, "fashion-mnist").iterdir()) == []

    fake_checksums = {
        name: mnist.Checksum("md5", hashlib.md5((mirror / f"{name}.gz").read_bytes()).hexdigest(), "download")
        for name in FILE_NAMES
    }
    monkeypatch.setitem(mnist._CHECKSUMS, "fashion-mnist", fake_checksums)
    X_train, y_train, X_test, y_test = load_fashion_mnist(mirrors=[mirror_of(mirror)])
    assert X_train.shape == (60000, 784) and y_test.shape == (10000,) and y_train[0] == 9
    cached = sorted(p.name for p in cache_of(tmp_path, "fashion-mnist").iterdir())
    assert cached == sorted(f"{name}.gz" for name in FILE_NAMES)


def test_default_cache_location(monkeypatch, tmp_path):
    assert mnist.cache_directory("mnist") == tmp_path / "xdg-cache" / "crossent" / "mnist"
    monkeypatch.setenv("XDG_CACHE_HOME", "")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert mnist.cache_directory("fashion-mnist") == tmp_path / "home" / ".cache" / "crossent" / "fashion-mnist"


def test_option_validation(tmp_path):
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        load_mnist(tmp_path, dtype=np.int32)
    with pytest.raises(ValueError, match="Normalizer"):
        load_mnist(tmp_path, normalize="standardize")
    with pytest.raises(ValueError, match="normalize must be 'none' or 'unit'"):
        load_mnist(tmp_path, normalize="zscore")
    with pytest.raises(TypeError, match="download must be True or False"):
        load_mnist(tmp_path, download="no")
    with pytest.raises(TypeError, match="data_dir must be a str or os.PathLike"):
        load_mnist(3)
    with pytest.raises(TypeError, match="mirrors must be a list"):
        load_mnist(tmp_path, mirrors="file:///x/")
