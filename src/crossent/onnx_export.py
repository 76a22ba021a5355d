r"""Export a trained classifier to ONNX, to run it without crossent (ONNX Runtime, C++, C#, the browser).

``crossent.export_onnx`` and ``crossent export MODEL OUT.onnx`` write the
inference graph of a :class:`~crossent.nn.SoftmaxRegression`,
:class:`~crossent.nn.LogisticRegression` or :class:`~crossent.nn.MLP`:

``input``
    float32 (batch, D): the raw features, as ``crossent predict`` takes them;
    the batch dimension is dynamic.
``logits``
    float32 (batch, C): ``model.forward(X)``.
``probabilities``
    float32: ``model.predict_proba(X)`` -- softmax rows (batch, C), or for
    ``LogisticRegression`` sigmoids, (batch,) when it has one output.
``label``
    int64 (batch,): ``model.predict(X)``, the argmax of the logits; softmax
    models (``SoftmaxRegression``, ``MLP``) only.

The normalisation a saved model was trained with (``crossent train
--normalize``, stored by :func:`crossent.save` with ``normalizer=``) becomes the
first two nodes of the graph, ``(input - offset) / scale`` in float32 -- the
arithmetic :meth:`crossent.datasets.Normalizer.transform` does -- so the
exported model takes the same raw features as ``crossent predict``. What the
graph does not do is read files: ``crossent predict`` divides image files of
raw pixels (values above 1) by 255 (16 for digits) before the model sees them;
give the graph pixels in [0, 1], as the data set loaders do.

The ``onnx`` package is needed only here, and imported only when a model is
exported: ``pip install 'crossent[onnx]'``.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from ._typing import PathLike
from ._validation import _describe

if TYPE_CHECKING:
    import onnx

    from .datasets import Normalizer
    from .nn import Model
    from .serialization import Checkpoint

__all__ = ["export_onnx", "DEFAULT_OPSET", "MIN_OPSET", "add_arguments", "run"]

#: the opset written when none is asked for: read by every ONNX Runtime since 1.13
DEFAULT_OPSET = 17
#: the oldest opset the graph can be written in (Squeeze with its axes as an input)
MIN_OPSET = 13

INSTALL_HINT = "pip install 'crossent[onnx]'"

#: names of the graph's input and outputs
INPUT, LOGITS, PROBABILITIES, LABEL = "input", "logits", "probabilities", "label"


def _import_onnx() -> ModuleType:
    """The ``onnx`` module, or an ImportError that says how to install it."""
    try:
        import onnx
    except ImportError as error:
        raise ImportError(
            f"ONNX export needs the onnx package, which is not installed ({error}); {INSTALL_HINT}"
        ) from None
    return onnx


# =====================================================================================================
# argument checks
# =====================================================================================================


def _check_model(model: Model | Checkpoint) -> tuple[Model, list[str] | None, Any]:
    """(model, class names, normalizer) from a crossent model or a :class:`crossent.Checkpoint`."""
    from .nn import MODELS
    from .serialization import Checkpoint

    class_names = normalizer = None
    if isinstance(model, Checkpoint):
        class_names, normalizer = model.class_names, model.metadata.get("normalizer")
        model = model.model
    if not isinstance(model, tuple(MODELS.values())):
        raise TypeError(
            f"model must be a crossent.nn {', '.join(MODELS)} (or a Checkpoint from crossent.load_checkpoint), "
            f"got {_describe(model)}"
        )
    return model, class_names, normalizer


def _check_path(path: object) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike ending in .onnx, got {_describe(path)}")
    path = Path(path)
    if path.suffix.lower() != ".onnx":
        raise ValueError(f"path must end in .onnx, got {str(path)!r}")
    if path.is_dir():
        raise ValueError(f"path {str(path)!r} is a directory; give a file name ending in .onnx")
    return path


def _check_opset_type(opset: object) -> int:
    if opset is None:
        return DEFAULT_OPSET
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)):
        raise TypeError(f"opset must be an integer or None, got {_describe(opset)}")
    return int(opset)


def _check_opset_range(opset: int, newest: int) -> None:
    if not MIN_OPSET <= opset <= newest:
        raise ValueError(
            f"opset must be in [{MIN_OPSET}, {newest}] (the newest the installed onnx knows), got {opset}"
        )


def _n_classes(model: Model) -> int:
    """How many names the classes take: two for a one-output LogisticRegression (class 0 and class 1)."""
    from .nn import LogisticRegression

    return 2 if isinstance(model, LogisticRegression) and model.n_outputs == 1 else model.n_outputs


def _check_class_names(class_names: Sequence[str] | None, model: Model) -> list[str] | None:
    if class_names is None:
        return None
    if isinstance(class_names, (str, bytes)) or not isinstance(class_names, Sequence):
        raise TypeError(f"class_names must be a sequence of names, got {_describe(class_names)}")
    expected = _n_classes(model)
    if len(class_names) != expected:
        raise ValueError(
            f"class_names must name the model's {expected} classes, got {len(class_names)}: {_describe(class_names)}"
        )
    return [str(name) for name in class_names]


def _check_normalizer(normalizer: Normalizer | Mapping[str, Any] | None, model: Model) -> Normalizer | None:
    """The fitted Normalizer to bake in, or None when there is nothing to do."""
    from .datasets import Normalizer

    if normalizer is None:
        return None
    if isinstance(normalizer, Normalizer):
        normalizer = normalizer.to_state()
    if not isinstance(normalizer, Mapping):
        raise TypeError(
            f"normalizer must be a crossent.datasets.Normalizer or its to_state() dict, got {_describe(normalizer)}"
        )
    normalizer = Normalizer.from_state(dict(normalizer))
    if normalizer.method == "none":
        return None
    if not normalizer.is_fitted:
        raise ValueError(f"normalizer Normalizer(method={normalizer.method!r}) is not fitted: nothing to bake in")
    if normalizer.n_features != model.n_features:
        raise ValueError(
            f"normalizer was fitted on {normalizer.n_features} features but the model takes {model.n_features}"
        )
    return normalizer


# =====================================================================================================
# the graph
# =====================================================================================================


def _network_nodes(model: Model, first_input: str) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """(nodes, initializers) of the layers: Gemm per Linear, the activation ops; Dropout is the identity.

    The L-Softmax output layer (:class:`~crossent.nn.LargeMarginLinear`) predicts
    with its plain scores :math:`x W^\top`: a Gemm without bias.
    """
    from onnx import helper, numpy_helper

    from .nn.large_margin import LargeMarginLinear
    from .nn.layers import Dropout, Linear, ReLU, Sigmoid, Tanh

    activations = {ReLU: "Relu", Tanh: "Tanh", Sigmoid: "Sigmoid"}
    layers = list(model.network)
    nodes, initializers = [], []
    current = first_input
    for index, layer in enumerate(layers):
        if isinstance(layer, Dropout):
            continue  # evaluation mode: the identity
        output = LOGITS if index == len(layers) - 1 else f"{index}.output"
        if isinstance(layer, (Linear, LargeMarginLinear)):
            # Gemm with transB=1 is y = x W^T + b with W stored (out, in), exactly Linear's layout
            names = [current, f"{index}.weight"]
            initializers.append(numpy_helper.from_array(np.asarray(layer.weight, dtype=np.float32), names[1]))
            bias = layer.bias if isinstance(layer, Linear) else None
            if bias is not None:
                names.append(f"{index}.bias")
                initializers.append(numpy_helper.from_array(np.asarray(bias, dtype=np.float32), names[2]))
            nodes.append(helper.make_node("Gemm", names, [output], name=f"{index}.linear", transB=1))
        elif type(layer) in activations:
            nodes.append(helper.make_node(activations[type(layer)], [current], [output], name=f"{index}.activation"))
        else:
            raise TypeError(f"layer {index} of the model ({layer!r}) has no ONNX equivalent here")
        current = output
    return nodes, initializers


def build_onnx_model(
    model: Model, *, opset: int = DEFAULT_OPSET, class_names: list[str] | None = None,
    normalizer: Normalizer | None = None,
) -> onnx.ModelProto:
    """The checked ``onnx.ModelProto`` that :func:`export_onnx` writes (arguments already validated)."""
    onnx = _import_onnx()
    from onnx import TensorProto, helper, numpy_helper

    from . import __version__
    from .nn import LogisticRegression

    nodes, initializers = [], []
    network_input = INPUT
    if normalizer is not None:
        # two float32 operations, as Normalizer.transform does them, so results match bit for bit
        offset, scale = normalizer.offset, normalizer.scale
        assert offset is not None and scale is not None  # fitted: checked by _check_normalizer
        initializers += [
            numpy_helper.from_array(offset.astype(np.float32), "normalizer.offset"),
            numpy_helper.from_array(scale.astype(np.float32), "normalizer.scale"),
        ]
        nodes += [
            helper.make_node("Sub", [INPUT, "normalizer.offset"], ["normalizer.centred"], name="normalizer.sub"),
            helper.make_node("Div", ["normalizer.centred", "normalizer.scale"], ["normalizer.output"],
                             name="normalizer.div"),
        ]
        network_input = "normalizer.output"
    layer_nodes, layer_initializers = _network_nodes(model, network_input)
    nodes += layer_nodes
    initializers += layer_initializers

    batch, n_outputs = "batch", model.n_outputs
    outputs = [helper.make_tensor_value_info(LOGITS, TensorProto.FLOAT, [batch, n_outputs])]
    if isinstance(model, LogisticRegression):
        if n_outputs == 1:
            # predict_proba of a binary model is (N,): the probability of class 1
            initializers.append(numpy_helper.from_array(np.array([1], dtype=np.int64), "squeezed_axes"))
            nodes += [
                helper.make_node("Sigmoid", [LOGITS], ["sigmoid"], name="sigmoid"),
                helper.make_node("Squeeze", ["sigmoid", "squeezed_axes"], [PROBABILITIES], name="squeeze"),
            ]
            outputs.append(helper.make_tensor_value_info(PROBABILITIES, TensorProto.FLOAT, [batch]))
        else:
            nodes.append(helper.make_node("Sigmoid", [LOGITS], [PROBABILITIES], name="sigmoid"))
            outputs.append(helper.make_tensor_value_info(PROBABILITIES, TensorProto.FLOAT, [batch, n_outputs]))
    else:
        nodes += [
            helper.make_node("Softmax", [LOGITS], [PROBABILITIES], name="softmax", axis=-1),
            # ties go to the first index, as numpy.argmax in model.predict
            helper.make_node("ArgMax", [LOGITS], [LABEL], name="argmax", axis=1, keepdims=0),
        ]
        outputs += [
            helper.make_tensor_value_info(PROBABILITIES, TensorProto.FLOAT, [batch, n_outputs]),
            helper.make_tensor_value_info(LABEL, TensorProto.INT64, [batch]),
        ]

    graph = helper.make_graph(
        nodes, type(model).__name__,
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, [batch, model.n_features])],
        outputs, initializer=initializers,
        doc_string=f"{model!r}" + ("" if normalizer is None else
                                   f"; input normalised inside the graph ({normalizer.method})"),
    )
    opset_imports = [helper.make_opsetid("", opset)]
    onnx_model = helper.make_model(
        graph, opset_imports=opset_imports, producer_name="crossent", producer_version=__version__,
        # the oldest IR version that carries this opset: the file opens in the oldest runtime able to run it
        ir_version=helper.find_min_ir_version_for(opset_imports),
    )
    properties = {"crossent_model": json.dumps(model.config()),
                  "normalizer": "none" if normalizer is None else normalizer.method}
    if class_names is not None:
        properties["class_names"] = json.dumps(class_names)
    helper.set_model_props(onnx_model, properties)
    onnx.checker.check_model(onnx_model, full_check=True)
    return onnx_model


def export_onnx(
    model: Model | Checkpoint,
    path: PathLike,
    *,
    opset: int | None = None,
    class_names: Sequence[str] | None = None,
    normalizer: Normalizer | Mapping[str, Any] | None = None,
) -> onnx.ModelProto:
    r"""Write ``model``'s inference graph to the ONNX file ``path`` (atomically) and return it.

    The graph computes, for the float32 ``input`` :math:`x` of shape
    (batch, D), with the hidden activations :math:`\phi` (ReLU, tanh or
    sigmoid; Dropout is the identity at inference) and, when a normalizer is
    given, its offset :math:`o` and scale :math:`s`:

    .. math::

        h_0 = (x - o) / s, \qquad h_l = \phi(h_{l-1} W_l^\top + b_l), \qquad
        z = h_{L-1} W_L^\top + b_L

    and outputs ``logits`` :math:`z`, ``probabilities`` :math:`\mathrm{softmax}(z)`
    row by row (:math:`\sigma(z)` for :class:`~crossent.nn.LogisticRegression`)
    and, for the softmax models, ``label`` :math:`\arg\max_c z_c` (int64).
    Without a normalizer :math:`h_0 = x`.

    Parameters
    ----------
    model : SoftmaxRegression, LogisticRegression, MLP or Checkpoint
        A :class:`crossent.Checkpoint` (from :func:`crossent.load_checkpoint`)
        brings its class names and normalizer, which the keyword arguments
        below replace when given.
    path : str or os.PathLike
        The file to write; must end in ``.onnx``. Written through a temporary
        file, so a failed export leaves any previous file intact.
    opset : int, optional
        The ONNX operator set: from :data:`MIN_OPSET` (13) to the newest the
        installed ``onnx`` knows; default :data:`DEFAULT_OPSET` (17).
    class_names : sequence of str, optional
        Stored as the JSON list in the model's metadata property
        ``class_names``: one name per class (two for a one-output
        LogisticRegression, one per label for multi-label).
    normalizer : crossent.datasets.Normalizer or its ``to_state()`` dict, optional
        The preprocessing the model was trained behind, computed by the graph's
        first nodes so that it takes raw features. ``method="none"`` adds nothing.

    Returns
    -------
    onnx.ModelProto
        The graph written, after ``onnx.checker.check_model``.

    Raises
    ------
    ImportError
        The ``onnx`` package is missing (``pip install 'crossent[onnx]'``).
    TypeError, ValueError
        An argument of the wrong type or value (the message names it).

    Shapes
    ------
    ``input`` (batch, n_features) float32, batch of any size. ``logits``
    (batch, C). ``probabilities`` (batch, C), or (batch,) for a one-output
    LogisticRegression (the probability of class 1). ``label`` (batch,) int64.
    Parameters of a float64 model are stored in float32.

    Examples
    --------
    >>> import tempfile, numpy as np, onnxruntime
    >>> from pathlib import Path
    >>> from crossent import export_onnx
    >>> from crossent.nn import MLP
    >>> model = MLP(4, [8], 3, seed=0)
    >>> X = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    >>> with tempfile.TemporaryDirectory() as directory:
    ...     graph = export_onnx(model, Path(directory) / "mlp.onnx")
    ...     session = onnxruntime.InferenceSession(str(Path(directory) / "mlp.onnx"))
    ...     logits, probabilities, label = session.run(None, {"input": X})
    >>> [output.name for output in graph.graph.output]
    ['logits', 'probabilities', 'label']
    >>> bool(np.allclose(probabilities, model.predict_proba(X), atol=1e-6)), bool((label == model.predict(X)).all())
    (True, True)
    """
    model, stored_class_names, stored_normalizer = _check_model(model)
    path = _check_path(path)
    opset = _check_opset_type(opset)
    class_names = _check_class_names(stored_class_names if class_names is None else class_names, model)
    normalizer = _check_normalizer(stored_normalizer if normalizer is None else normalizer, model)
    onnx = _import_onnx()
    _check_opset_range(opset, onnx.defs.onnx_opset_version())
    onnx_model = build_onnx_model(model, opset=opset, class_names=class_names, normalizer=normalizer)

    from ._io import atomic_output

    with atomic_output(path) as file:
        file.write(onnx_model.SerializeToString())
    return onnx_model


# =====================================================================================================
# crossent export
# =====================================================================================================


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``crossent export``."""
    parser.add_argument("model_file", metavar="MODEL", help="a model saved by 'crossent train --save' or crossent.save")
    parser.add_argument("output", metavar="OUT.onnx", help="the ONNX file to write")
    parser.add_argument("--opset", type=int, default=None,
                        help=f"ONNX operator set, {MIN_OPSET} or newer (default: {DEFAULT_OPSET})")


def run(args: argparse.Namespace) -> int:
    """``crossent export``: load the model file, export it with its normalizer and class names, say what was written."""
    from .cli import UsageError
    from .serialization import load_checkpoint

    _check_path(args.output)  # a wrong name fails before the model is read
    checkpoint = load_checkpoint(args.model_file)
    try:
        onnx_model = export_onnx(checkpoint, args.output, opset=args.opset)
    except ImportError as error:
        raise UsageError(str(error).splitlines()[0]) from None
    model = checkpoint.model
    properties = {prop.key: prop.value for prop in onnx_model.metadata_props}
    outputs = ", ".join(output.name for output in onnx_model.graph.output)
    normalised = properties["normalizer"]
    print(f"wrote {args.output}: {type(model).__name__} ({model.n_features} features), opset "
          f"{onnx_model.opset_import[0].version}, outputs {outputs}"
          + ("" if normalised == "none" else f"; the graph applies the saved normalisation ({normalised})"))
    return 0
