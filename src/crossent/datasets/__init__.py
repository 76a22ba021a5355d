"""Data sets for classifiers: IDX files, (Fashion-)MNIST, the shipped 8x8 digits, CSV/NPZ files, 2-D toy sets, scaling, splitting."""

from .digits import load_digits
from .files import load_csv, load_dataset, load_npz
from .idx import read_idx, write_idx
from .mnist import DatasetNotFoundError, load_fashion_mnist, load_mnist
from .preprocessing import Normalizer, train_test_split
from .synthetic import make_blobs, make_moons, make_spirals

__all__ = [
    "read_idx",
    "write_idx",
    "load_mnist",
    "load_fashion_mnist",
    "load_digits",
    "load_csv",
    "load_npz",
    "load_dataset",
    "Normalizer",
    "train_test_split",
    "DatasetNotFoundError",
    "make_blobs",
    "make_moons",
    "make_spirals",
]
