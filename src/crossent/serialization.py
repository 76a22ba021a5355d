"""Saving and loading models and checkpoints.

File format (``format_version`` 1)
----------------------------------
A ZIP archive (NumPy's ``.npz`` layout, so ``numpy.load`` can open it) with:

* ``metadata.json`` -- UTF-8 JSON: ``format`` (``"crossent-model"``),
  ``format_version``, ``crossent_version``, ``model`` (architecture: class and
  constructor arguments), ``parameter_names``, ``loss`` (the loss configuration
  or null), ``class_names``, ``normalizer`` (preprocessing state or null),
  ``optimizer`` (class, hyper-parameters and state with arrays replaced by
  references), ``training`` (history, seed, ...), ``random_state`` (states of
  the model's random generators, e.g. dropout) and ``extra`` (free-form).
* ``parameters/<name>.npy`` -- one array per parameter, in the model's order.
* ``optimizer/<k>.npy`` -- the optimiser's state arrays (momentum buffers, moments).

Files are written atomically: to a temporary file in the same directory,
flushed to disk, then renamed over the target, so a crash mid-save leaves any
previous file intact.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._io import atomic_output
from ._typing import PathLike

if TYPE_CHECKING:
    from .datasets import Normalizer
    from .losses import Loss, LossSum
    from .nn import Model
    from .optim import Optimizer

FORMAT = "crossent-model"
FORMAT_VERSION = 1

__all__ = ["save", "load", "load_checkpoint", "Checkpoint", "ModelFileError"]


class ModelFileError(ValueError):
    """A file that is not a readable crossent model (corrupt, truncated, foreign or too new)."""


@dataclass
class Checkpoint:
    """Everything :func:`load_checkpoint` reads back: the model and the state to resume training."""

    model: Model
    metadata: dict[str, Any]
    optimizer_state: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def class_names(self) -> list[str] | None:
        names: list[str] | None = self.metadata.get("class_names")
        return names

    @property
    def training(self) -> dict[str, Any]:
        training: dict[str, Any] = self.metadata.get("training") or {}
        return training

    def loss(self) -> Loss | LossSum | None:
        from .losses import loss_from_config

        config = self.metadata.get("loss")
        return None if config is None else loss_from_config(config)


def _split_arrays(value: Any, prefix: str, arrays: dict[str, np.ndarray]) -> Any:
    """Replace every ndarray inside nested dicts/lists by ``{"__array__": key}`` and collect it."""
    if isinstance(value, np.ndarray):
        key = f"{prefix}/{len(arrays)}"
        arrays[key] = value
        return {"__array__": key}
    if isinstance(value, dict):
        return {str(k): _split_arrays(v, prefix, arrays) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_split_arrays(v, prefix, arrays) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _join_arrays(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__array__"}:
            return arrays[value["__array__"]]
        return {k: _join_arrays(v, arrays) for k, v in value.items()}
    if isinstance(value, list):
        return [_join_arrays(v, arrays) for v in value]
    return value


def _generators(model: Model) -> list[np.random.Generator]:
    """The model's random generators (e.g. dropout masks), in a stable order."""
    found: list[np.random.Generator] = []

    def visit(obj: object, depth: int = 0) -> None:
        if depth > 6:
            return
        for name in sorted(vars(obj)) if hasattr(obj, "__dict__") else ():
            attribute = getattr(obj, name)
            if isinstance(attribute, np.random.Generator):
                found.append(attribute)
            elif isinstance(attribute, (list, tuple)):
                for item in attribute:
                    if hasattr(item, "__dict__") and hasattr(item, "forward"):
                        visit(item, depth + 1)
            elif hasattr(attribute, "__dict__") and hasattr(attribute, "forward"):
                visit(attribute, depth + 1)

    visit(model)
    return found


def save(
    model: Model,
    path: PathLike,
    *,
    optimizer: Optimizer | None = None,
    loss: Loss | LossSum | None = None,
    class_names: Sequence[str] | None = None,
    normalizer: Normalizer | dict[str, Any] | None = None,
    training: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Write ``model`` (and optionally the state to resume training) to ``path`` atomically.

    Parameters
    ----------
    model : crossent.nn model
    path : str or Path
        Conventionally ``*.npz``.
    optimizer : optimiser, optional
        Its ``state_dict()`` is stored so that training can resume exactly.
    loss : Loss or LossSum, optional
        Stored as its configuration.
    class_names : list of str, optional
    normalizer : object with ``to_state()``, or a dict, optional
        The input preprocessing to reapply at prediction time.
    training : dict, optional
        JSON-serialisable training state (e.g. ``{"history": history.to_dict(), "seed": 0}``).
    extra : dict, optional
        Anything else JSON-serialisable.
    """
    from . import __version__

    arrays: dict[str, np.ndarray] = {}
    names = list(model.parameter_names())
    for name, parameter in zip(names, model.parameters()):
        arrays[f"parameters/{name}"] = np.asarray(parameter)
    optimizer_meta = None
    if optimizer is not None:
        optimizer_meta = {
            "class": type(optimizer).__name__,
            "state": _split_arrays(optimizer.state_dict(), "optimizer", arrays),
        }
    if normalizer is not None and not isinstance(normalizer, dict):
        normalizer = normalizer.to_state()
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "crossent_version": __version__,
        "model": model.config(),
        "parameter_names": names,
        "loss": None if loss is None else loss.config(),
        "class_names": None if class_names is None else [str(c) for c in class_names],
        "normalizer": _split_arrays(normalizer, "normalizer", arrays) if normalizer is not None else None,
        "optimizer": optimizer_meta,
        "training": training,
        "random_state": [g.bit_generator.state for g in _generators(model)],
        "extra": extra or {},
    }
    try:
        text = json.dumps(metadata, indent=1, allow_nan=True)
    except TypeError as error:
        raise TypeError(f"save: metadata is not JSON-serialisable ({error})") from None

    with atomic_output(path) as file, zipfile.ZipFile(file, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("metadata.json", text)
        for key, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
            archive.writestr(f"{key}.npy", buffer.getvalue())


def load_checkpoint(path: PathLike) -> Checkpoint:
    """Read a file written by :func:`save`: the model, its metadata and the optimiser state.

    Raises
    ------
    FileNotFoundError
        No such file.
    ModelFileError
        The file is not a crossent model: not a ZIP archive, truncated, without
        ``metadata.json``, of another format, or of a newer format version.
    """
    from .nn import model_from_config

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {str(path)!r}")
    try:
        with zipfile.ZipFile(path) as archive:
            members = set(archive.namelist())
            if "metadata.json" not in members:
                raise ModelFileError(f"{str(path)!r} is not a crossent model file (no metadata.json inside)")
            metadata = json.loads(archive.read("metadata.json").decode("utf-8"))
            if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
                raise ModelFileError(f"{str(path)!r} is not a crossent model file (format is not {FORMAT!r})")
            version = metadata.get("format_version")
            if not isinstance(version, int) or version > FORMAT_VERSION:
                raise ModelFileError(
                    f"{str(path)!r} has format version {version!r}; this crossent reads up to "
                    f"{FORMAT_VERSION} -- upgrade crossent"
                )
            arrays: dict[str, np.ndarray] = {}
            for member in members:
                if member.endswith(".npy"):
                    arrays[member[: -len(".npy")]] = np.lib.format.read_array(
                        io.BytesIO(archive.read(member)), allow_pickle=False
                    )
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError, KeyError,
            UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelFileError(
            f"{str(path)!r} is not a readable crossent model file (corrupt or truncated: {error})"
        ) from None
    try:
        model = model_from_config(metadata["model"])
        names = metadata["parameter_names"]
        if list(model.parameter_names()) != list(names):
            raise ModelFileError(f"{str(path)!r}: parameter names do not match the architecture")
        for name, parameter in zip(names, model.parameters()):
            stored = arrays[f"parameters/{name}"]
            if stored.shape != parameter.shape:
                raise ModelFileError(
                    f"{str(path)!r}: parameter {name!r} has shape {stored.shape}, the architecture "
                    f"needs {parameter.shape}"
                )
            parameter[...] = stored
        for generator, state in zip(_generators(model), metadata.get("random_state") or []):
            generator.bit_generator.state = state
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError) as error:
        raise ModelFileError(f"{str(path)!r}: the model description is invalid ({error})") from None
    optimizer_state = None
    if metadata.get("optimizer") is not None:
        optimizer_state = _join_arrays(metadata["optimizer"]["state"], arrays)
    if metadata.get("normalizer") is not None:
        metadata["normalizer"] = _join_arrays(metadata["normalizer"], arrays)
    return Checkpoint(model=model, metadata=metadata, optimizer_state=optimizer_state,
                      extra=metadata.get("extra") or {})


def load(path: PathLike) -> Model:
    """Load the model saved at ``path`` (see :func:`load_checkpoint` for the training state)."""
    return load_checkpoint(path).model
