r"""scikit-learn estimators on crossent's models, losses and optimisers.

``import crossent`` does not import this module (nor scikit-learn); ``import
crossent.sklearn`` does, and needs ``pip install crossent[sklearn]``.

* :class:`SoftmaxClassifier`: :class:`crossent.nn.SoftmaxRegression`, softmax over the classes;
* :class:`MLPClassifier`: :class:`crossent.nn.MLP`, softmax over the classes;
  both train with the large-margin softmax loss (L-Softmax,
  :class:`crossent.nn.LargeMarginSoftmaxClassifier`) when given ``margin``;
* :class:`BinaryLogisticClassifier`: :class:`crossent.nn.LogisticRegression`, one sigmoid (binary
  classification) or one sigmoid per label (multi-label classification).

Objective
---------
Every estimator minimises, over the training rows :math:`n` with sample
weights :math:`s_n` (``sample_weight`` times the class weight of the row's
class, 1 when absent), the weighted mean loss plus an L2 penalty on the
weight matrices (never on the biases):

.. math::

    J(\theta) = \frac{\sum_n s_n L_n}{\sum_n s_n} + \frac{\alpha}{2} \sum_l \lVert W_l \rVert_F^2,
    \qquad
    \nabla_{W_l} J = \frac{\sum_n s_n \nabla_{W_l} L_n}{\sum_n s_n} + \alpha W_l .

:math:`L_n` is the chosen loss of row :math:`n` on the logits (for
cross-entropy :math:`\log\sum_c e^{z_{nc}} - z_{n y_n}`, whose gradient with
respect to the logits is :math:`\mathrm{softmax}(z_n) - \mathrm{onehot}(y_n)`);
for multi-label targets it is the mean of the K per-label sigmoid
cross-entropies. The penalty's gradient :math:`\alpha W` is weight decay: a
plain gradient step multiplies :math:`W` by :math:`1 - \eta\alpha` before
following the loss gradient.

With unit weights the minimiser of :math:`J` is that of scikit-learn's
``LogisticRegression(C=C)`` (``C * sum_n L_n + ||W||^2 / 2``, intercept not
penalised) for :math:`\alpha = 1 / (C \sum_n s_n)`.

Solvers: ``"lbfgs"`` minimises :math:`J` on the whole training set with
``scipy.optimize.minimize(method="L-BFGS-B")`` on the flat parameter vector;
``"gd"`` takes full-batch gradient steps; ``"sgd"``, ``"momentum"``,
``"nesterov"`` and ``"adam"`` take steps on minibatches of ``batch_size``
rows, reshuffled every epoch, with a constant learning rate or one that
follows ``learning_rate_schedule`` over the steps of the fit.
``dtype="float32"`` trains in single precision (the predicted probabilities
stay float64). A minibatch of :math:`B` rows estimates the gradient of
:math:`J` without bias: its weighted loss sum is divided by
:math:`B \bar s` (:math:`\bar s` the mean weight over the training rows), not by
the batch's own weight sum.

Examples
--------
>>> from crossent.datasets import load_digits
>>> from crossent.sklearn import SoftmaxClassifier
>>> X_train, y_train, X_test, y_test = load_digits(seed=0)
>>> classifier = SoftmaxClassifier(solver="lbfgs", alpha=1e-3, max_iter=300).fit(X_train, y_train)
>>> classifier.classes_
array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
>>> bool(classifier.score(X_test, y_test) > 0.93)
True
"""

from __future__ import annotations

import inspect
import numbers
import warnings

import numpy as np
import scipy.optimize
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning, DataConversionWarning
from sklearn.utils import check_random_state
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

from . import _sklearn_dask
from ._validation import _describe
from .functional import log_sigmoid, log_softmax, sigmoid, softmax
from .losses import Loss, SigmoidBinaryCrossEntropyLoss, SigmoidFocalLoss, get_loss
from .nn import MLP, LargeMarginCrossEntropy, LargeMarginSoftmaxClassifier, LogisticRegression, SoftmaxRegression
from .nn import Model, model_from_config
from .nn.large_margin import LargeMarginLinear, _check_annealing, _check_margin
from .optim import Optimizer
from .optim.schedules import SCHEDULE_NAMES, Schedule, make_schedule
from .train import _batches, make_optimizer

__all__ = ["SoftmaxClassifier", "MLPClassifier", "BinaryLogisticClassifier", "SOLVERS", "LEARNING_RATE_SCHEDULES"]

#: solvers of every estimator; all but "lbfgs" go through :func:`crossent.train.make_optimizer`
SOLVERS = ("sgd", "momentum", "nesterov", "adam", "gd", "lbfgs")
#: names of ``learning_rate_schedule``, built by :func:`crossent.optim.make_schedule`
LEARNING_RATE_SCHEDULES = SCHEDULE_NAMES
_STOCHASTIC_SOLVERS = ("sgd", "momentum", "nesterov", "adam")
#: losses on sigmoid logits that take per-element weights (the binary estimator's losses)
_SIGMOID_LOSSES = (SigmoidBinaryCrossEntropyLoss, SigmoidFocalLoss)
#: loss options the estimator sets itself
_RESERVED_OPTIONS = ("reduction", "sample_weight", "ignore_index", "axis")
#: keys of ``margin_annealing``; beta_gamma None sizes the decay to the fit (see _MARGIN_DOC)
_MARGIN_ANNEALING = {"beta_start": 1000.0, "beta_gamma": None, "beta_power": 35.0, "beta_min": 1.0}


def _margin_layer(model: Model) -> LargeMarginLinear:
    """The L-Softmax output layer of a model built with ``margin``."""
    if not isinstance(model, LargeMarginSoftmaxClassifier):
        raise TypeError(f"the model was built without a margin: {model!r}")
    return model.output_layer


def _check_integer(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {_describe(value)}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_real(value, name: str, *, low: float, low_inclusive: bool = True, high: float | None = None,
                high_inclusive: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {_describe(value)}")
    value = float(value)
    too_low = value < low or (value == low and not low_inclusive)
    too_high = high is not None and (value > high or (value == high and not high_inclusive))
    if not np.isfinite(value) or too_low or too_high:
        interval = ("[" if low_inclusive else "(") + f"{low:g}, " + ("inf)" if high is None else
                                                                     f"{high:g}" + ("]" if high_inclusive else ")"))
        raise ValueError(f"{name} must be a finite number in {interval}, got {value!r}")
    return value


def _check_dtype(value) -> np.dtype:
    """np.float32 or np.float64 from "float32" / "float64", the NumPy scalar types or their np.dtype."""
    if not isinstance(value, (str, type, np.dtype)):
        raise TypeError(f"dtype must be 'float32' or 'float64' (or np.float32 / np.float64), got {_describe(value)}")
    try:
        resolved = np.dtype(value)
    except TypeError:
        resolved = None
    # np.dtype also reads "f4", "d" and float: accepted, they name the same two dtypes
    if resolved not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be 'float32' or 'float64' (or np.float32 / np.float64), got {_describe(value)}")
    return resolved


def _check_sample_weight(sample_weight, n_samples: int) -> np.ndarray | None:
    """sample_weight as float64 (n_samples,), finite and >= 0, or None."""
    if sample_weight is None:
        return None
    if isinstance(sample_weight, numbers.Real) and not isinstance(sample_weight, bool):
        sample_weight = np.full(n_samples, float(sample_weight))
    weights = np.asarray(sample_weight)
    if weights.dtype.kind not in "biuf":
        raise TypeError(f"sample_weight must hold real numbers, got dtype {weights.dtype}")
    weights = weights.astype(np.float64)
    if weights.shape != (n_samples,):
        raise ValueError(
            f"sample_weight must have shape ({n_samples},), one weight per row of X, got shape {weights.shape}"
        )
    bad = ~np.isfinite(weights) | (weights < 0)
    if bad.any():
        position = int(np.argmax(bad))
        raise ValueError(f"sample_weight must be finite and >= 0; found {weights[position]!r} at row {position}")
    return weights


class _Classifier(ClassifierMixin, BaseEstimator):
    """Fitting, prediction and the scikit-learn protocol shared by the three estimators.

    A subclass sets ``_multilabel_support`` and defines :meth:`_build_model`;
    its ``__init__`` lists every hyperparameter (scikit-learn reads them from
    the signature).
    """

    _multilabel_support = False
    # set by fit (declared for the type checker only: an unfitted estimator has neither)
    model_: Model
    _optimizer_configuration: tuple

    # ------------------------------------------------------------------ hyperparameters

    def _check_hyperparameters(self) -> None:
        if not isinstance(self.solver, str) or self.solver not in SOLVERS:
            raise ValueError(f"solver must be one of {', '.join(map(repr, SOLVERS))}, got {_describe(self.solver)}")
        if self.learning_rate is not None:
            _check_real(self.learning_rate, "learning_rate", low=0.0, low_inclusive=False)
        _check_real(self.momentum, "momentum", low=0.0, high=1.0, high_inclusive=False)
        _check_real(self.alpha, "alpha", low=0.0)
        _check_integer(self.batch_size, "batch_size", 1)
        _check_integer(self.max_iter, "max_iter", 1)
        _check_real(self.tol, "tol", low=0.0)
        _check_real(self.validation_fraction, "validation_fraction", low=0.0, low_inclusive=False, high=1.0,
                    high_inclusive=False)
        _check_integer(self.n_iter_no_change, "n_iter_no_change", 1)
        _check_integer(self.verbose, "verbose", 0)
        for name in ("early_stopping", "warm_start", "shuffle"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise TypeError(f"{name} must be True or False, got {_describe(getattr(self, name))}")
        if self.class_weight is not None and self.class_weight != "balanced" and not isinstance(self.class_weight, dict):
            raise ValueError(f"class_weight must be None, 'balanced' or a dict {{class: weight}}, "
                             f"got {_describe(self.class_weight)}")
        _check_dtype(self.dtype)
        schedule = self.learning_rate_schedule
        if isinstance(schedule, Schedule):
            if self.learning_rate is not None:
                raise ValueError(f"learning_rate must be None when learning_rate_schedule is a Schedule object "
                                 f"(it carries its own learning rate), got learning_rate={self.learning_rate!r}")
        elif not isinstance(schedule, str) or schedule not in LEARNING_RATE_SCHEDULES:
            raise ValueError(f"learning_rate_schedule must be one of {', '.join(map(repr, LEARNING_RATE_SCHEDULES))} "
                             f"or a crossent.optim Schedule, got {_describe(schedule)}")
        if self._margin is not None:
            _check_margin(self._margin)
            self._margin_annealing()
        elif getattr(self, "margin_annealing", None) is not None:
            raise ValueError(f"margin_annealing applies to the large-margin softmax loss: set margin (an integer "
                             f">= 1) or leave margin_annealing None, got {_describe(self.margin_annealing)}")

    @property
    def _margin(self):
        """``margin`` of the estimators that take one (None: the plain loss)."""
        return getattr(self, "margin", None)

    def _margin_annealing(self) -> dict:
        """``margin_annealing`` merged into the defaults, checked; beta_gamma may be None (sized by the fit)."""
        given = {} if self.margin_annealing is None else self.margin_annealing
        if not isinstance(given, dict):
            raise TypeError(f"margin_annealing must be a dict or None, got {_describe(given)}")
        unknown = sorted(set(given) - set(_MARGIN_ANNEALING))
        if unknown:
            raise ValueError(f"margin_annealing has unknown keys {unknown}; the keys are "
                             f"{', '.join(map(repr, _MARGIN_ANNEALING))}")
        options = {**_MARGIN_ANNEALING, **given}
        gamma = options["beta_gamma"]
        checked = _check_annealing(options["beta_start"], 0.0 if gamma is None else gamma, options["beta_power"],
                                   options["beta_min"])
        return {**checked, "beta_gamma": None if gamma is None else checked["beta_gamma"]}

    def _set_margin_annealing(self, total_steps: int | None) -> None:
        """Give the L-Softmax layer its beta schedule for a run of ``total_steps`` steps (None: L-BFGS, constant)."""
        if self._margin is None:
            return
        options = self._margin_annealing()
        start, power, floor = options["beta_start"], options["beta_power"], options["beta_min"]
        if total_steps is None:
            # one objective for the line searches: beta held at its floor
            start, gamma = floor, 0.0
        elif options["beta_gamma"] is not None:
            gamma = options["beta_gamma"]
        else:
            # beta_start (1 + gamma t)^-power = max(beta_min, 1) at t = total_steps / 2
            end = max(floor, 1.0)
            gamma = 0.0 if start <= end or power == 0 else (
                ((start / end) ** (1.0 / power) - 1.0) / max(1.0, total_steps / 2))
        _margin_layer(self.model_).annealing = {"beta_start": start, "beta_gamma": gamma, "beta_power": power,
                                              "beta_min": floor}

    def _make_loss(self) -> Loss:
        """The loss object with reduction="sum" (the estimator divides by the weight total itself)."""
        options = {} if self.loss_options is None else self.loss_options
        if not isinstance(options, dict):
            raise TypeError(f"loss_options must be a dict or None, got {_describe(options)}")
        reserved = sorted(set(options) & set(_RESERVED_OPTIONS + (("weight",) if self._sigmoid else ())))
        if reserved:
            raise ValueError(
                f"loss_options must not set {reserved}: the estimator sets the reduction and passes "
                f"sample_weight / class_weight itself"
            )
        if self._margin is not None and (not isinstance(self.loss, str) or self.loss != "cross_entropy" or options):
            raise ValueError(f"margin={self._margin!r} trains with the large-margin softmax loss: loss must be "
                             f"'cross_entropy' with no loss_options, got loss={_describe(self.loss)} and "
                             f"loss_options={self.loss_options!r}")
        if isinstance(self.loss, Loss):
            if options:
                raise ValueError("loss_options must be None when loss is a Loss object (configure the object)")
            loss = type(self.loss)(**{k: v for k, v in self.loss.options.items() if k != "reduction"},
                                   reduction="sum")
        elif isinstance(self.loss, str):
            loss = get_loss(self.loss, **options, reduction="sum")
        else:
            raise TypeError(f"loss must be a loss name or a crossent Loss object, got {_describe(self.loss)}")
        parameters = list(inspect.signature(type(loss).function).parameters)
        if self._sigmoid:
            if not isinstance(loss, _SIGMOID_LOSSES):
                raise ValueError(
                    f"loss must be a sigmoid loss on logits ('sigmoid_binary_cross_entropy' or 'sigmoid_focal') "
                    f"for {type(self).__name__}, got {_describe(self.loss)}"
                )
        elif parameters[0] != "logits" or "sample_weight" not in parameters or isinstance(loss, _SIGMOID_LOSSES):
            raise ValueError(
                f"loss must be a softmax loss on logits that takes sample_weight (e.g. 'cross_entropy', 'focal', "
                f"'generalized_cross_entropy'), got {_describe(self.loss)}"
            )
        return loss

    # ------------------------------------------------------------------ targets

    @property
    def _sigmoid(self) -> bool:
        return self._multilabel_support

    def _prepare_targets(self, y, classes_given=None, first_call=True):
        """(encoded targets, classes, multilabel) from y; sets nothing."""
        if self._multilabel_support and np.ndim(y) == 2 and np.shape(y)[1] == 1:
            warnings.warn("A column-vector y was passed when a 1d array was expected; it is used as y.ravel()",
                          DataConversionWarning, stacklevel=3)
            y = np.ravel(y)
        check_classification_targets(y)
        kind = type_of_target(y)
        if kind == "multilabel-indicator":
            if not self._multilabel_support:
                raise ValueError(f"{type(self).__name__} takes one label per row; got a multi-label indicator "
                                 f"matrix y of shape {np.shape(y)} (BinaryLogisticClassifier takes those)")
            y = np.asarray(y)
            classes = np.arange(y.shape[1])
            if classes_given is not None and not np.array_equal(np.asarray(classes_given), classes):
                raise ValueError(f"classes must be np.arange({y.shape[1]}) for a multi-label y, got {classes_given!r}")
            if not first_call and not self._multilabel:
                raise ValueError("y is multi-label but the estimator was fitted on one label per row")
            if not first_call and y.shape[1] != self.classes_.size:
                raise ValueError(f"y has {y.shape[1]} labels, the estimator was fitted on {self.classes_.size}")
            return (y > 0).astype(np.float64), classes, True
        y = np.asarray(y)
        if classes_given is not None:
            classes = np.unique(np.asarray(classes_given))
            unknown = np.setdiff1d(np.unique(y), classes)
            if unknown.size:
                raise ValueError(f"y contains labels {unknown.tolist()} that are not in classes {classes.tolist()}")
        elif first_call:
            classes = np.unique(y)
        else:
            classes = self.classes_
            unknown = np.setdiff1d(np.unique(y), classes)
            if unknown.size:
                raise ValueError(f"y contains labels {unknown.tolist()} the estimator was not fitted on "
                                 f"(classes_ = {classes.tolist()})")
        if not first_call and self._multilabel:
            raise ValueError("y has one label per row but the estimator was fitted on a multi-label y")
        if classes.size < 2:
            raise ValueError(f"y has 1 class ({classes.tolist()}); a classifier needs at least 2 classes")
        if self._sigmoid and classes.size > 2:
            raise ValueError(f"Only binary classification is supported. The type of the target is multiclass: "
                             f"y has {classes.size} classes ({type(self).__name__} is binary or multi-label; "
                             f"SoftmaxClassifier takes several classes)")
        indices = np.searchsorted(classes, y)
        if self._sigmoid:
            return indices.astype(np.float64), classes, False
        return indices.astype(np.int64), classes, False

    def _row_weights(self, sample_weight, targets, classes, multilabel: bool, *, incremental: bool):
        """Per-row weights s_n = sample_weight * class weight, float64 (n,), or None for all ones."""
        weights = _check_sample_weight(sample_weight, targets.shape[0])
        if self.class_weight is None:
            return weights
        if multilabel:
            raise ValueError("class_weight is not supported for a multi-label y; pass sample_weight instead")
        if self.class_weight == "balanced" and incremental:
            raise ValueError("class_weight='balanced' needs the class frequencies of the whole training set; "
                             "partial_fit sees one chunk at a time (pass a dict or sample_weight)")
        labels = targets.astype(np.int64)
        if self.class_weight == "balanced":
            present = np.unique(labels)
            # compute_class_weight needs every class present; absent classes get no rows anyway
            per_class = np.ones(classes.size)
            per_class[present] = compute_class_weight("balanced", classes=present, y=labels)
        else:
            unknown = [key for key in self.class_weight if key not in set(classes.tolist())]
            if unknown:
                raise ValueError(f"class_weight has keys {unknown} that are not classes ({classes.tolist()})")
            per_class = np.array([float(self.class_weight.get(c, 1.0)) for c in classes.tolist()])
            _check_sample_weight(per_class, classes.size)
        row_class_weight = per_class[labels]
        return row_class_weight if weights is None else weights * row_class_weight

    # ------------------------------------------------------------------ objective

    def _new_model(self, n_features: int, n_outputs: int, rng: np.random.Generator) -> Model:
        return self._build_model(n_features, n_outputs, int(rng.integers(2**31 - 1)), _check_dtype(self.dtype))

    def _match_dtype(self) -> None:
        """Continue in a changed ``dtype`` (warm start, partial_fit): the fitted weights converted to it.

        Also checks that ``margin`` still describes the fitted model (a changed
        integer margin is taken over by its output layer).
        """
        fitted_margin = self.model_.margin if isinstance(self.model_, LargeMarginSoftmaxClassifier) else None
        if (fitted_margin is None) != (self._margin is None):
            raise ValueError(f"margin={self._margin!r} but the fitted model was trained with margin={fitted_margin!r}: "
                             f"the output layers differ; fit without warm_start to start afresh")
        if self._margin is not None:
            _margin_layer(self.model_).margin = _check_margin(self._margin)
        dtype = _check_dtype(self.dtype)
        if self.model_.dtype == dtype:
            return
        converted = self._build_model(self.model_.n_features, self.model_.n_outputs, 0, dtype)
        for target, source in zip(converted.parameters(), self.model_.parameters(), strict=True):
            if target.shape != source.shape:
                raise ValueError(f"the model's parameters changed shape ({source.shape} -> {target.shape}) since "
                                 f"the last fit; fit without warm_start to start afresh")
            target[...] = source
        if self._margin is not None:  # the beta schedule goes on where it was
            _margin_layer(converted).annealing = dict(_margin_layer(self.model_).annealing)
            _margin_layer(converted).annealing_step = _margin_layer(self.model_).annealing_step
        self.model_ = converted

    def _objective(self, X, targets, weights, mean_weight: float, *, training: bool = True):
        """J on (X, targets) and its gradients (``model_.gradients()``, overwritten).

        ``weights`` None means unit weights; ``mean_weight`` is the divisor
        :math:`\\bar s` of an unbiased estimate (the batch's own mean for full batch).
        """
        model = self.model_
        logits = model.forward(X, training=training)
        one_output = self._sigmoid and logits.shape[1] == 1
        inputs = logits[:, 0] if one_output else logits
        batch = {}
        if weights is not None:
            if self._sigmoid:
                batch["weight"] = weights if one_output else weights[:, None]
            else:
                batch["sample_weight"] = weights
        loss = self._loss if self._margin is None else LargeMarginCrossEntropy(_margin_layer(model), reduction="sum")
        value, grad = loss.value_and_grad(inputs, targets, **batch)
        denominator = X.shape[0] * mean_weight * (1 if one_output or not self._sigmoid else logits.shape[1])
        scale = 0.0 if denominator == 0 else 1.0 / denominator
        grad = np.reshape(grad, logits.shape)
        grad *= scale
        model.backward(grad, need_input_grad=False)
        gradients = model.gradients()
        penalty = 0.0
        if self.alpha:
            for index in self._penalized:
                weight_matrix = model.parameters()[index]
                penalty += 0.5 * self.alpha * float(np.vdot(weight_matrix, weight_matrix))
                gradients[index] += self.alpha * weight_matrix
        return float(value) * scale + penalty, gradients

    def _data_loss(self, X, targets, weights) -> float:
        """Weighted mean loss without the penalty (evaluation mode), for validation."""
        logits = self.model_.forward(X)
        one_output = self._sigmoid and logits.shape[1] == 1
        inputs = logits[:, 0] if one_output else logits
        batch = {}
        if weights is not None:
            batch = {"weight": weights if one_output else weights[:, None]} if self._sigmoid else {"sample_weight": weights}
        total = float(self._loss(inputs, targets, **batch))
        denominator = (X.shape[0] if weights is None else weights.sum()) * (
            1 if one_output or not self._sigmoid else logits.shape[1])
        return total / denominator

    # ------------------------------------------------------------------ fitting

    def _initialise(self, X, targets, classes, multilabel, rng) -> None:
        self.classes_ = classes
        self._multilabel = multilabel
        n_outputs = classes.size if not self._sigmoid else (classes.size if multilabel else 1)
        self.model_ = self._new_model(X.shape[1], n_outputs, rng)
        names = self.model_.parameter_names()
        self._penalized = [index for index, name in enumerate(names) if name.endswith("weight")]
        self.n_iter_ = 0
        self.loss_curve_: list[float] = []
        self._optimizer: Optimizer | None = None
        self._rng = rng

    def _prepare_optimizer(self) -> float:
        """Make ``_optimizer`` ready for the next steps; returns the base learning rate (before any schedule).

        The optimiser, with its state (momentum buffer, Adam moments and step
        count), is kept from one warm-started ``fit`` or ``partial_fit`` to the
        next while the solver, momentum and dtype stay the same; its learning
        rate is set afresh from the hyperparameters at every call, so that
        ``set_params(learning_rate=...)`` between calls takes effect.
        """
        momentum = self.momentum if self.solver in ("momentum", "nesterov") else None
        configuration = (self.solver, momentum, self.model_.dtype)
        if self._optimizer is None or self._optimizer_configuration != configuration:
            name = "sgd" if self.solver == "gd" else self.solver
            # lr=None gives the solver's default learning rate, remembered for learning_rate=None
            self._optimizer = make_optimizer(name, self.model_.parameters(), momentum=momentum)
            self._optimizer_configuration = configuration
            self._default_learning_rate = self._optimizer.lr
        if isinstance(self.learning_rate_schedule, Schedule):
            base = self.learning_rate_schedule.lr
        else:
            base = self._default_learning_rate if self.learning_rate is None else float(self.learning_rate)
        self._optimizer.lr = base
        return base

    def _schedule(self, base_learning_rate: float, total_steps: int) -> Schedule | None:
        """The learning rate per step of a run of ``total_steps`` steps; None for a constant one."""
        if isinstance(self.learning_rate_schedule, Schedule):
            return self.learning_rate_schedule
        if self.learning_rate_schedule == "constant":
            return None
        return make_schedule(self.learning_rate_schedule, base_learning_rate, total_steps)

    def _print(self, message: str) -> None:
        if self.verbose:
            print(message)

    def _batch_rows(self, n_samples: int) -> int:
        return n_samples if self.solver == "gd" else min(self.batch_size, n_samples)

    def _epoch(self, X, targets, weights, mean_weight, schedule=None, first_step: int = 0) -> float:
        """One pass over (X, targets) in minibatches; returns the mean objective over the epoch.

        With a ``schedule``, step ``k`` of the epoch uses the learning rate
        ``schedule.lr_at(first_step + k)``.
        """
        optimizer = self._optimizer
        assert optimizer is not None, "_prepare_optimizer runs before the first epoch"
        n_samples = X.shape[0]
        batch = self._batch_rows(n_samples)
        order = self._rng.permutation(n_samples) if self.shuffle and batch < n_samples else None
        total = 0.0
        # _batches gathers the shuffled rows a few MB at a time into one reused buffer; a permuted
        # copy of all of X every epoch took as long as the training steps themselves on MNIST
        for index, (X_batch, targets_batch) in enumerate(_batches(X, targets, batch, order)):
            rows = slice(index * batch, (index + 1) * batch)
            if weights is None:
                weights_batch = None
            else:
                weights_batch = weights[rows] if order is None else weights[order[rows]]
            if schedule is not None:
                optimizer.lr = schedule.lr_at(first_step + index)
            value, gradients = self._objective(X_batch, targets_batch, weights_batch, mean_weight)
            if not np.isfinite(value):
                raise FloatingPointError(
                    f"the training objective became {value} at iteration {self.n_iter_ + 1}; learning_rate "
                    f"{optimizer.lr:g} is probably too high for this data (try a smaller one or scaled X)"
                )
            optimizer.step(gradients)
            total += value * X_batch.shape[0]
        return total / n_samples

    def _fit_stochastic(self, X, targets, weights) -> None:
        base_learning_rate = self._prepare_optimizer()
        X_val = None
        if self.early_stopping:
            order = self._rng.permutation(X.shape[0])
            n_val = int(np.ceil(self.validation_fraction * X.shape[0]))
            if n_val >= X.shape[0]:
                raise ValueError(f"validation_fraction={self.validation_fraction} leaves no training rows out of "
                                 f"{X.shape[0]}")
            validation, training = order[:n_val], order[n_val:]
            X_val, targets_val = X[validation], targets[validation]
            weights_val = None if weights is None else weights[validation]
            X, targets = X[training], targets[training]
            weights = None if weights is None else weights[training]
            self.validation_loss_curve_ = []
        mean_weight = 1.0 if weights is None else float(weights.mean())
        if mean_weight == 0:
            raise ValueError("sample_weight (times class_weight) is zero on every training row; nothing to fit")
        steps_per_epoch = -(-X.shape[0] // self._batch_rows(X.shape[0]))
        schedule = self._schedule(base_learning_rate, self.max_iter * steps_per_epoch)
        self._set_margin_annealing(self.max_iter * steps_per_epoch)
        best, waited = np.inf, 0
        best_parameters: list[np.ndarray] = []
        converged = False
        for epoch in range(self.max_iter):
            value = self._epoch(X, targets, weights, mean_weight, schedule, epoch * steps_per_epoch)
            self.n_iter_ += 1
            self.loss_curve_.append(value)
            message = f"Iteration {self.n_iter_}, loss = {value:.8f}"
            monitored = value
            if X_val is not None:
                monitored = self._data_loss(X_val, targets_val, weights_val)
                self.validation_loss_curve_.append(monitored)
                message += f", validation loss = {monitored:.8f}"
            self._print(message)
            if self._margin is not None and not _margin_layer(self.model_).annealing_finished:
                # beta still falls: each epoch's objective is a harder one than the last (the training loss
                # rises), so losses are compared only from the epoch where beta reaches its floor
                best, waited = np.inf, 0
                if X_val is not None:
                    best_parameters = []
                continue
            if monitored < best - self.tol:
                waited = 0
            else:
                waited += 1
            if monitored < best:
                best = monitored
                if X_val is not None:
                    best_parameters = [parameter.copy() for parameter in self.model_.parameters()]
            if waited >= self.n_iter_no_change:
                converged = True
                break
        if X_val is not None:
            # (still annealing at the end: no epoch to compare, the last weights and loss stand)
            self.best_validation_loss_ = best if best_parameters else self.validation_loss_curve_[-1]
            for parameter, kept in zip(self.model_.parameters(), best_parameters):
                parameter[...] = kept
        if not converged:
            warnings.warn(
                f"{type(self).__name__} reached max_iter={self.max_iter} epochs before the "
                f"{'validation' if X_val is not None else 'training'} loss stopped improving by tol={self.tol}",
                ConvergenceWarning, stacklevel=3)

    def _fit_lbfgs(self, X, targets, weights) -> None:
        self._set_margin_annealing(None)
        parameters = self.model_.parameters()
        sizes = [parameter.size for parameter in parameters]
        mean_weight = 1.0 if weights is None else float(weights.mean())
        if mean_weight == 0:
            raise ValueError("sample_weight (times class_weight) is zero on every training row; nothing to fit")

        def set_parameters(flat):
            for parameter, piece in zip(parameters, np.split(flat, np.cumsum(sizes)[:-1])):
                parameter[...] = piece.reshape(parameter.shape)

        def objective(flat):
            set_parameters(flat)
            value, gradients = self._objective(X, targets, weights, mean_weight)
            return value, np.concatenate([gradient.ravel() for gradient in gradients])

        curve = []

        def record(intermediate_result):
            curve.append(float(intermediate_result.fun))
            self._print(f"Iteration {len(curve)}, loss = {curve[-1]:.8f}")

        start = np.concatenate([parameter.ravel() for parameter in parameters])
        result = scipy.optimize.minimize(
            objective, start, method="L-BFGS-B", jac=True, callback=record,
            options={"maxiter": self.max_iter, "gtol": self.tol, "ftol": 64 * np.finfo(np.float64).eps,
                     "maxfun": 20 * self.max_iter + 100, "maxls": 50},
        )
        set_parameters(result.x)
        self.n_iter_ += int(result.nit)
        self.loss_curve_.extend(curve)
        if result.status == 1:
            warnings.warn(f"{type(self).__name__} (lbfgs) stopped after max_iter={self.max_iter} iterations "
                          f"before the gradient norm reached tol={self.tol}: {result.message}",
                          ConvergenceWarning, stacklevel=3)

    def fit(self, X, y, sample_weight=None):
        """Fit the model to ``(X, y)`` (continuing from the fitted weights when ``warm_start``).

        Parameters
        ----------
        X : array_like or dask array, shape (n_samples, n_features)
            A dask array (``y`` and ``sample_weight`` dask or NumPy) is
            trained block by block on the current dask client's cluster
            (:mod:`crossent._sklearn_dask`; SoftmaxClassifier and MLPClassifier).
        y : array_like, shape (n_samples,) of class labels, or (n_samples, n_labels) 0/1 for multi-label
        sample_weight : array_like of shape (n_samples,), optional
            Finite weights >= 0; a weight of k counts a row k times.

        Returns
        -------
        self
        """
        self._check_hyperparameters()
        if _sklearn_dask.is_dask(X, y, sample_weight):
            return _sklearn_dask.fit(self, X, y, sample_weight)
        warm = self.warm_start and hasattr(self, "model_")
        X, y = validate_data(self, X, y, reset=not warm, dtype=_check_dtype(self.dtype),
                             multi_output=self._multilabel_support, y_numeric=False)
        self._loss = self._make_loss()
        targets, classes, multilabel = self._prepare_targets(y, first_call=not warm)
        if warm and (not np.array_equal(classes, self.classes_) or multilabel != self._multilabel):
            raise ValueError(f"warm_start=True needs the classes of the previous fit ({self.classes_.tolist()}), "
                             f"got {classes.tolist()}")
        weights = self._row_weights(sample_weight, targets, classes, multilabel, incremental=False)
        if weights is not None and np.all(weights == weights[0]) and weights[0] > 0:
            weights = None  # a constant weight cancels in the weighted mean; the unweighted path is faster
        if not warm:
            self._initialise(X, targets, classes, multilabel, np.random.default_rng(
                check_random_state(self.random_state).randint(np.iinfo(np.int32).max)))
        else:
            self._match_dtype()
            self.n_iter_, self.loss_curve_ = 0, []
        if self.solver == "lbfgs":
            self._fit_lbfgs(X, targets, weights)
        else:
            self._fit_stochastic(X, targets, weights)
        return self

    def _partial_fit_available(self) -> bool:
        """partial_fit exists for the stochastic solvers with a schedule that needs no length of a fit.

        Raises AttributeError (what ``hasattr`` reads) saying why otherwise.
        """
        if self.solver == "lbfgs":
            raise AttributeError("partial_fit is not available with solver='lbfgs', which minimises over the "
                                 "whole training set; choose a gradient solver")
        schedule = self.learning_rate_schedule
        if isinstance(schedule, str) and schedule in LEARNING_RATE_SCHEDULES and schedule != "constant":
            raise AttributeError(
                f"partial_fit is not available with learning_rate_schedule={schedule!r}, which spans the "
                f"max_iter epochs of a fit; partial_fit runs one epoch per call and takes 'constant' or a "
                f"crossent.optim Schedule object (evaluated at the optimiser's step count)"
            )
        return True

    @available_if(_partial_fit_available)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch over ``(X, y)`` (minibatches of ``batch_size``), keeping the optimiser's state between calls.

        Parameters
        ----------
        X : array_like, shape (n_samples, n_features)
        y : array_like, shape (n_samples,) or (n_samples, n_labels)
        classes : array_like, optional
            Every class label; required on the first call for one label per
            row (a chunk may miss some classes), not later.
        sample_weight : array_like of shape (n_samples,), optional

        Returns
        -------
        self
        """
        self._check_hyperparameters()
        first_call = not hasattr(self, "model_")
        X, y = validate_data(self, X, y, reset=first_call, dtype=_check_dtype(self.dtype),
                             multi_output=self._multilabel_support)
        if first_call and classes is None and not (self._multilabel_support and np.ndim(y) == 2 and
                                                   np.shape(y)[1] > 1):
            raise ValueError("classes must be passed on the first call to partial_fit (every class label)")
        if not first_call and classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(f"classes={np.unique(classes).tolist()} differs from the classes of the first call "
                             f"({self.classes_.tolist()})")
        self._loss = self._make_loss()
        targets, classes, multilabel = self._prepare_targets(y, classes, first_call=first_call)
        weights = self._row_weights(sample_weight, targets, classes, multilabel, incremental=True)
        if first_call:
            self._initialise(X, targets, classes, multilabel, np.random.default_rng(
                check_random_state(self.random_state).randint(np.iinfo(np.int32).max)))
            # the schedule of max_iter calls like this one
            self._set_margin_annealing(self.max_iter * -(-X.shape[0] // self._batch_rows(X.shape[0])))
        else:
            self._match_dtype()
        self._prepare_optimizer()
        mean_weight = 1.0 if weights is None else float(weights.mean())
        if mean_weight == 0:
            raise ValueError("sample_weight (times class_weight) is zero on every row; nothing to fit")
        schedule = self.learning_rate_schedule if isinstance(self.learning_rate_schedule, Schedule) else None
        value = self._epoch(X, targets, weights, mean_weight, schedule, self._optimizer.step_count)
        self.n_iter_ += 1
        self.loss_curve_.append(value)
        self._print(f"Iteration {self.n_iter_}, loss = {value:.8f}")
        return self

    # ------------------------------------------------------------------ prediction

    def _logits(self, X) -> np.ndarray:
        """Logits in float64, computed in float64 from the fitted weights whatever ``dtype`` trained them.

        A float32 matrix product rounds a row differently depending on where
        the row falls in BLAS's blocks, so float32 logits of the same row could
        differ with the order or the number of rows predicted together.
        """
        check_is_fitted(self, "model_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        model = self.model_
        if model.dtype != np.float64:
            model = model_from_config({**model.config(), "dtype": "float64"})
            for target, source in zip(model.parameters(), self.model_.parameters(), strict=True):
                target[...] = source
        return model.forward(X)

    def decision_function(self, X) -> np.ndarray:
        """Logits: (n, n_classes); for two classes (n,) log-odds of ``classes_[1]``; (n, K) for multi-label."""
        if _sklearn_dask.is_dask(X):
            return _sklearn_dask.map_rows(self, self.decision_function, X)
        logits = self._logits(X)
        if self._sigmoid:
            return logits if self._multilabel else logits[:, 0]
        return logits[:, 1] - logits[:, 0] if logits.shape[1] == 2 else logits

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities (n, n_classes) in ``classes_`` order; (n, K) label probabilities for multi-label.

        Float64 for either ``dtype``: the logits are computed in float64 from
        the fitted weights, so that every row sums to 1 to float64 rounding and
        does not depend on the other rows predicted with it. A dask X gives a dask array.
        """
        if _sklearn_dask.is_dask(X):
            return _sklearn_dask.map_rows(self, self.predict_proba, X)
        logits = self._logits(X)
        if not self._sigmoid:
            return softmax(logits, axis=1)
        if self._multilabel:
            return sigmoid(logits)
        return np.column_stack([sigmoid(-logits[:, 0]), sigmoid(logits[:, 0])])

    def predict_log_proba(self, X) -> np.ndarray:
        """Log of :meth:`predict_proba` from the logits (log-softmax / log-sigmoid): finite where the probability underflows."""
        if _sklearn_dask.is_dask(X):
            return _sklearn_dask.map_rows(self, self.predict_log_proba, X)
        logits = self._logits(X)
        if not self._sigmoid:
            return log_softmax(logits, axis=1)
        if self._multilabel:
            return log_sigmoid(logits)
        return np.column_stack([log_sigmoid(-logits[:, 0]), log_sigmoid(logits[:, 0])])

    def predict(self, X) -> np.ndarray:
        """Most probable class per row (n,), labels from ``classes_``; (n, K) 0/1 for multi-label."""
        if _sklearn_dask.is_dask(X):
            return _sklearn_dask.map_rows(self, self.predict, X)
        logits = self._logits(X)
        if self._sigmoid:
            if self._multilabel:
                return (logits >= 0).astype(np.int64)
            return self.classes_[(logits[:, 0] >= 0).astype(np.int64)]
        return self.classes_[np.argmax(logits, axis=1)]

    # ------------------------------------------------------------------ scikit-learn metadata

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        if self._multilabel_support:
            tags.classifier_tags.multi_class = False
            tags.classifier_tags.multi_label = True
        return tags

    @property
    def coefs_(self) -> list:
        """Weight matrices (n_out, n_in) of each Linear layer, in ``dtype`` (views of the model's parameters)."""
        check_is_fitted(self, "model_")
        return [self.model_.parameters()[index] for index in self._penalized]

    @property
    def intercepts_(self) -> list:
        """Bias vectors of each Linear layer, in ``dtype`` (zeros for the bias-free L-Softmax output layer)."""
        check_is_fitted(self, "model_")
        names, parameters = self.model_.parameter_names(), self.model_.parameters()
        intercepts = []
        for index in self._penalized:
            bias_name = names[index][: -len("weight")] + "bias"
            if index + 1 < len(names) and names[index + 1] == bias_name:
                intercepts.append(parameters[index + 1])
            else:
                intercepts.append(np.zeros(parameters[index].shape[0], dtype=parameters[index].dtype))
        return intercepts


_SOFTMAX_LOSS_DOC = """
    loss : str or crossent Loss, default "cross_entropy"
        A name for :func:`crossent.losses.get_loss` ("cross_entropy", "focal",
        "generalized_cross_entropy", "symmetric_cross_entropy", "poly1", ...),
        configured by ``loss_options``; it must take logits and ``sample_weight``.
    loss_options : dict, optional
        Options of the loss (e.g. ``{"gamma": 2.0}`` for "focal",
        ``{"label_smoothing": 0.1}``); not ``reduction``, which the estimator sets."""

_MARGIN_DOC = r"""
    margin : int >= 1 or None, default None
        None trains with ``loss``. An integer :math:`m` trains with the
        large-margin softmax loss (L-Softmax, Liu et al. 2016; see
        :mod:`crossent.nn.large_margin`): the output layer loses its bias
        (``intercepts_[-1]`` is zeros) and, in training only, the target
        class's logit :math:`\lVert w_y\rVert \lVert x\rVert \cos\theta` becomes
        :math:`f_y = \lVert w_y\rVert \lVert x\rVert \psi(\theta)` with
        :math:`\psi(\theta) = (-1)^k \cos(m\theta) - 2k`, mixed with the plain
        logit as :math:`(\beta z_y + f_y)/(1 + \beta)`. ``loss`` must be
        "cross_entropy" with no ``loss_options``. 1 is cross-entropy on
        bias-free logits. Predictions use the plain logits. Not with a dask X.
        The margin is made for learned features (``MLPClassifier``): a
        bias-free linear model has few angles to spare, and with a margin
        that its data cannot meet the loss is lowest with every weight near
        0 (loss :math:`\log C`, chance accuracy) -- on the digits, margins
        of 3 and more do that to ``SoftmaxClassifier``.
    margin_annealing : dict or None, default None
        The schedule :math:`\beta_t = \max(\beta_{\min}, \beta_0 (1 + \gamma t)^{-p})`
        over training step :math:`t`: keys "beta_start" (:math:`\beta_0`,
        default 1000), "beta_power" (:math:`p`, 35), "beta_min" (1) and
        "beta_gamma" (:math:`\gamma`; default None: sized so that :math:`\beta`
        reaches ``max(beta_min, 1)`` halfway through the ``max_iter`` epochs of
        the fit, or of ``max_iter`` calls like the first ``partial_fit``).
        A floor below 1 (more margin than plain logit) can shrink the features
        of a network trained from scratch towards 0. While :math:`\beta` is
        above its floor the objective changes from step to step, so the
        stopping rule (``tol``, ``n_iter_no_change``, ``early_stopping``)
        compares only the epochs after :math:`\beta` reaches "beta_min"
        (with a floor of 0 it never does, and the fit runs ``max_iter``
        epochs). With "lbfgs", whose line searches need one objective,
        :math:`\beta` stays at "beta_min"."""

_TRAINING_PARAMETERS_DOC = """
    solver : {"sgd", "momentum", "nesterov", "adam", "gd", "lbfgs"}, default "sgd"
    learning_rate : float > 0, optional
        Step size of the gradient solvers; None: 0.1 for "sgd" and "gd", 0.05
        for "momentum" and "nesterov", 1e-3 for "adam" (unused by "lbfgs").
        Read at every ``fit`` and ``partial_fit``, also when ``warm_start``
        continues a previous fit.
    momentum : float in [0, 1), default 0.9
        For "momentum" and "nesterov".
    alpha : float >= 0, default 0.0
        L2 penalty :math:`\\tfrac{\\alpha}{2}\\sum\\lVert W\\rVert^2` on the weight
        matrices, gradient :math:`\\alpha W` (weight decay); biases are not penalised.
    batch_size : int >= 1, default 32
        Rows per step of the minibatch solvers ("gd" and "lbfgs" use all rows).
    max_iter : int >= 1, default 200
        Epochs (gradient solvers) or iterations ("lbfgs").
    tol : float >= 0, default 1e-4
        Stop when the monitored loss has not dropped by ``tol`` for
        ``n_iter_no_change`` epochs; for "lbfgs", the gradient tolerance.
    early_stopping : bool, default False
        Hold out ``validation_fraction`` of the rows, monitor their loss
        instead of the training loss, and keep the weights of its best epoch.
    validation_fraction : float in (0, 1), default 0.1
    n_iter_no_change : int >= 1, default 5
    class_weight : None, "balanced" or dict, default None
        Multiplies each row's weight by its class's weight; "balanced" is
        ``n_samples / (n_classes * count(class))``.
    warm_start : bool, default False
        ``fit`` continues from the fitted weights instead of starting afresh.
    random_state : None, int or numpy.random.RandomState
        Decides the initial weights, the shuffling and the validation rows;
        the same integer gives the same fit.
    shuffle : bool, default True
        Reshuffle the rows every epoch.
    verbose : int, default 0
        Print the loss after every epoch when > 0.
    learning_rate_schedule : str or crossent.optim Schedule, default "constant"
        Learning rate :math:`\\eta_s` of optimiser step :math:`s` of a ``fit``
        (counted from 0 at every call, ``warm_start`` included), built by
        :func:`crossent.optim.make_schedule` from ``learning_rate``
        (:math:`\\eta`) for the :math:`T` = ``max_iter`` times
        ``ceil(n_training_rows / batch_size)`` steps of the fit:
        "constant" :math:`\\eta`; "cosine"
        :math:`\\eta\\,(1 + \\cos(\\pi s / T)) / 2`; "linear"
        :math:`\\eta\\,(1 - s / T)`; "step" multiplies :math:`\\eta` by 0.1
        every ``max(1, T // 3)`` steps; "warmup-cosine" and "warmup-linear"
        first ramp up over 5 % of the steps (at least one), then decay over
        the rest. Early stopping may end the fit before step :math:`T`. A
        Schedule object (e.g. ``crossent.optim.cosine(0.5, total_steps=1000,
        min_lr=0.01)``) is used as it is, with ``learning_rate`` None;
        ``partial_fit`` evaluates it at the optimiser's step count over all
        calls, and does not exist with the named schedules other than
        "constant", which need the length of a fit. Unused by "lbfgs".
    dtype : {"float64", "float32"}, default "float64"
        Dtype of the weights and of the computations of ``fit``: X is
        converted to it. "float32" halves the bytes the matrix products read
        (they run about twice as fast on MNIST) at float32 rounding of the
        weights; "lbfgs" then stops at the precision of a float32 gradient.
        ``predict_proba``, ``predict_log_proba`` and ``decision_function``
        return float64 either way, computed in float64 from the fitted
        weights (a float32 product would round a row differently with its
        position among the rows predicted together). A warm start in another
        dtype converts the fitted weights.

    Attributes
    ----------
    classes_ : ndarray
    model_ : crossent.nn model (in ``dtype``)
    coefs_, intercepts_ : lists of ndarray
    n_features_in_ : int
    feature_names_in_ : ndarray of str (only when X had string column names)
    n_iter_ : int
        Epochs, or L-BFGS iterations, run by the last ``fit`` (all ``partial_fit`` calls).
    loss_curve_ : list of float
        Objective :math:`J` after every epoch / iteration.
    validation_loss_curve_ : list of float
        With ``early_stopping``: the validation loss after every epoch.
    best_validation_loss_ : float
        With ``early_stopping``: the lowest of those losses.
"""


def _with_margin(parameters_doc: str) -> str:
    """The training parameters' documentation with ``margin`` and ``margin_annealing`` before its Attributes."""
    parameters, attributes = parameters_doc.split("\n    Attributes\n", 1)
    return parameters + _MARGIN_DOC + "\n\n    Attributes\n" + attributes


class SoftmaxClassifier(_Classifier):
    __doc__ = """Multinomial logistic regression (:class:`crossent.nn.SoftmaxRegression`) as a scikit-learn classifier.

    Logits :math:`z = x W^\\top + b` with :math:`W` (n_classes, n_features),
    :math:`P(c \\mid x) = \\mathrm{softmax}(z)_c`, trained on the objective of
    :mod:`crossent.sklearn` from zero weights.

    Parameters
    ----------""" + _SOFTMAX_LOSS_DOC + _with_margin(_TRAINING_PARAMETERS_DOC) + """
    Shapes
    ------
    X (n, n_features) -> ``predict_proba`` (n, n_classes), ``decision_function``
    (n, n_classes), or (n,) log-odds for two classes; ``coef_`` (n_classes,
    n_features) and ``intercept_`` (n_classes,).

    Examples
    --------
    >>> import numpy as np
    >>> from crossent.sklearn import SoftmaxClassifier
    >>> X = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0], [3.0, 1.0]])
    >>> y = np.array(["a", "b", "c", "c"])
    >>> classifier = SoftmaxClassifier(solver="lbfgs", alpha=0.01).fit(X, y)
    >>> classifier.predict(X)
    array(['a', 'b', 'c', 'c'], dtype='<U1')
    >>> classifier.predict_proba(X).shape
    (4, 3)
    """

    def __init__(self, loss="cross_entropy", loss_options=None, solver="sgd", learning_rate=None, momentum=0.9,
                 alpha=0.0, batch_size=32, max_iter=200, tol=1e-4, early_stopping=False, validation_fraction=0.1,
                 n_iter_no_change=5, class_weight=None, warm_start=False, random_state=None, shuffle=True,
                 verbose=0, learning_rate_schedule="constant", dtype="float64", margin=None, margin_annealing=None):
        self.loss = loss
        self.loss_options = loss_options
        self.solver = solver
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.alpha = alpha
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.tol = tol
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.class_weight = class_weight
        self.warm_start = warm_start
        self.random_state = random_state
        self.shuffle = shuffle
        self.verbose = verbose
        self.learning_rate_schedule = learning_rate_schedule
        self.dtype = dtype
        self.margin = margin
        self.margin_annealing = margin_annealing

    def _build_model(self, n_features, n_outputs, seed, dtype) -> Model:
        if self.margin is not None:  # zero weights: the first step is a plain softmax one (the angle is undefined)
            return LargeMarginSoftmaxClassifier(n_features, n_outputs, margin=self.margin, init="zeros", seed=seed,
                                                dtype=dtype)
        return SoftmaxRegression(n_features, n_outputs, init="zeros", seed=seed, dtype=dtype)

    @property
    def coef_(self) -> np.ndarray:
        """(n_classes, n_features) weights."""
        return self.coefs_[0]

    @property
    def intercept_(self) -> np.ndarray:
        """(n_classes,) biases."""
        return self.intercepts_[0]


class MLPClassifier(_Classifier):
    __doc__ = """Multilayer perceptron (:class:`crossent.nn.MLP`) with a softmax output as a scikit-learn classifier.

    Parameters
    ----------
    hidden_layer_sizes : int or tuple of int, default (100,)
    activation : {"relu", "tanh", "sigmoid"}, default "relu"
        Hidden activation; initial weights He (relu) or Xavier/Glorot, from ``random_state``.""" \
        + _SOFTMAX_LOSS_DOC + _with_margin(_TRAINING_PARAMETERS_DOC) + """
    Shapes
    ------
    X (n, n_features) -> ``predict_proba`` (n, n_classes); ``coefs_[l]`` has
    shape (width of layer l + 1, width of layer l).

    Examples
    --------
    >>> import numpy as np
    >>> from crossent.sklearn import MLPClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(60, 2))
    >>> y = (X[:, 0] * X[:, 1] > 0).astype(int)
    >>> classifier = MLPClassifier((16,), solver="adam", learning_rate=0.01, max_iter=400,
    ...                            random_state=0).fit(X, y)
    >>> bool(classifier.score(X, y) > 0.9)
    True
    """

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", loss="cross_entropy", loss_options=None,
                 solver="sgd", learning_rate=None, momentum=0.9, alpha=0.0, batch_size=32, max_iter=200, tol=1e-4,
                 early_stopping=False, validation_fraction=0.1, n_iter_no_change=5, class_weight=None,
                 warm_start=False, random_state=None, shuffle=True, verbose=0, learning_rate_schedule="constant",
                 dtype="float64", margin=None, margin_annealing=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.loss = loss
        self.loss_options = loss_options
        self.solver = solver
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.alpha = alpha
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.tol = tol
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.class_weight = class_weight
        self.warm_start = warm_start
        self.random_state = random_state
        self.shuffle = shuffle
        self.verbose = verbose
        self.learning_rate_schedule = learning_rate_schedule
        self.dtype = dtype
        self.margin = margin
        self.margin_annealing = margin_annealing

    def _build_model(self, n_features, n_outputs, seed, dtype) -> Model:
        if self.margin is not None:
            return LargeMarginSoftmaxClassifier(n_features, n_outputs, margin=self.margin,
                                                hidden_sizes=self.hidden_layer_sizes, activation=self.activation,
                                                seed=seed, dtype=dtype)
        return MLP(n_features, self.hidden_layer_sizes, n_outputs, activation=self.activation, seed=seed,
                   dtype=dtype)


class BinaryLogisticClassifier(_Classifier):
    __doc__ = """Logistic regression with sigmoid outputs (:class:`crossent.nn.LogisticRegression`): binary or multi-label.

    Binary ``y`` (two classes, shape (n,)): one output,
    :math:`P(\\text{classes\\_}[1] \\mid x) = \\sigma(x w^\\top + b)`.
    Multi-label ``y`` (0/1 matrix (n, K)): K independent sigmoids, each trained
    with sigmoid cross-entropy; the loss of a row is the mean over its labels.

    Parameters
    ----------
    loss : str or crossent Loss, default "sigmoid_binary_cross_entropy"
        "sigmoid_binary_cross_entropy" or "sigmoid_focal" (options in ``loss_options``).
    loss_options : dict, optional
        Options of the loss (e.g. ``{"pos_weight": 2.0}``); not ``reduction`` or ``weight``.""" \
        + _TRAINING_PARAMETERS_DOC + """
    Shapes
    ------
    Binary: ``predict_proba`` (n, 2), ``decision_function`` (n,).
    Multi-label: ``predict_proba`` and ``decision_function`` (n, K), ``predict`` (n, K) 0/1.

    Examples
    --------
    >>> import numpy as np
    >>> from crossent.sklearn import BinaryLogisticClassifier
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> Y = np.array([[0, 1], [0, 1], [1, 0], [1, 0]])
    >>> classifier = BinaryLogisticClassifier(solver="lbfgs", alpha=0.01).fit(X, Y)
    >>> classifier.predict(X)
    array([[0, 1],
           [0, 1],
           [1, 0],
           [1, 0]])
    """

    _multilabel_support = True

    def __init__(self, loss="sigmoid_binary_cross_entropy", loss_options=None, solver="sgd", learning_rate=None,
                 momentum=0.9, alpha=0.0, batch_size=32, max_iter=200, tol=1e-4, early_stopping=False,
                 validation_fraction=0.1, n_iter_no_change=5, class_weight=None, warm_start=False,
                 random_state=None, shuffle=True, verbose=0, learning_rate_schedule="constant", dtype="float64"):
        self.loss = loss
        self.loss_options = loss_options
        self.solver = solver
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.alpha = alpha
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.tol = tol
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.class_weight = class_weight
        self.warm_start = warm_start
        self.random_state = random_state
        self.shuffle = shuffle
        self.verbose = verbose
        self.learning_rate_schedule = learning_rate_schedule
        self.dtype = dtype

    def _build_model(self, n_features, n_outputs, seed, dtype) -> Model:
        return LogisticRegression(n_features, n_outputs, init="zeros", seed=seed, dtype=dtype)

    @property
    def coef_(self) -> np.ndarray:
        """(1, n_features) for binary, (K, n_features) for multi-label."""
        return self.coefs_[0]

    @property
    def intercept_(self) -> np.ndarray:
        return self.intercepts_[0]
