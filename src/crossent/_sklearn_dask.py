r"""Dask arrays in the scikit-learn estimators of :mod:`crossent.sklearn` (fitting and prediction).

``SoftmaxClassifier.fit(X, y)`` and ``MLPClassifier.fit(X, y)`` with a dask
array ``X`` (``y`` and ``sample_weight`` dask or NumPy) train through
:mod:`crossent.distributed`, block by block on the dask cluster of the current
``dask.distributed.Client`` (in this process without one):

* ``solver="lbfgs"``: :func:`crossent.distributed.fit_full_batch` on the
  estimator's own objective. With row weights :math:`s_n` (``sample_weight``
  times the class weight) the loss is summed with the weights
  :math:`s_n / \sum_m s_m`, so that

  .. math::

      J(\theta) = \sum_n \frac{s_n}{\sum_m s_m} L_n + \frac{\alpha}{2} \sum_l \lVert W_l \rVert_F^2

  is the in-memory estimator's :math:`J` (up to the order of the additions),
  minimised by L-BFGS with the same options; the fitted weights agree with an
  in-memory fit on the same rows.
* ``solver="gd"``: full-batch gradient steps on the same :math:`J`
  (:func:`crossent.distributed.fit_minibatch` with ``batch_size=None``), the
  estimator's learning rate, schedule and ``tol`` / ``n_iter_no_change`` rule.
* the stochastic solvers: :func:`crossent.distributed.fit_minibatch` with
  ``batch_size`` rows per step. Each step follows the gradient of the batch's
  own weighted mean loss (:math:`\sum_{n \in B} s_n L_n / \sum_{n \in B} s_n`,
  as :func:`crossent.fit` takes it) plus :math:`\alpha W`, and the batches are
  ``fit_minibatch``'s -- so the weights differ from an in-memory fit, whose
  batches come from another generator and divide by :math:`|B|\,\bar s`.
  Data that takes more than
  :data:`crossent.distributed.PERSIST_MEMORY_FRACTION` of the workers' memory
  limits is not held in memory: its batches are drawn block by block
  (``sampling="stream"``, with a ``ResourceWarning``), and "lbfgs" and "gd"
  read it from its source at every evaluation.

Not available with dask arrays: ``early_stopping`` (it holds out rows of X in
memory) and :class:`~crossent.sklearn.BinaryLogisticClassifier`.
``predict``, ``predict_proba``, ``predict_log_proba`` and
``decision_function`` of a dask array return a dask array computed block by
block (``map_blocks``).

Examples
--------
>>> import dask.array as da
>>> import numpy as np
>>> from crossent.sklearn import SoftmaxClassifier
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(120, 3)); y = (X[:, 0] > 0).astype(int)
>>> options = dict(solver="lbfgs", alpha=0.1)
>>> on_blocks = SoftmaxClassifier(**options).fit(da.from_array(X, chunks=(50, -1)), y)
>>> in_memory = SoftmaxClassifier(**options).fit(X, y)
>>> bool(np.allclose(on_blocks.coef_, in_memory.coef_, rtol=1e-8, atol=1e-10))
True
>>> on_blocks.predict_proba(da.from_array(X, chunks=(50, -1))).compute().shape
(120, 2)
"""

from __future__ import annotations

import functools
import warnings

import numpy as np

from ._validation import _describe


def is_dask(*values) -> bool:
    """Whether any of the values is a dask array."""
    return any(type(value).__module__.startswith("dask.array") and hasattr(value, "chunks") for value in values)


def _encode(classes, block):
    return np.searchsorted(classes, block).astype(np.int64)


def _class_weights(per_class, targets):
    return per_class[targets]


def _check_matrix(X, name: str = "X"):
    if X.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n_samples, n_features), got shape {X.shape}")
    if np.dtype(X.dtype).kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {X.dtype}")
    if any(np.isnan(c) for c in X.chunks[0]):
        raise ValueError(f"{name} has unknown chunk sizes; call {name}.compute_chunk_sizes() first")
    return X.rechunk({1: -1})


def _as_rows(value, row_chunks, name: str):
    """``value`` (dask or NumPy, one entry per row) as a 1-D dask array chunked like X's rows."""
    import dask.array as da

    array = value if is_dask(value) else da.from_array(np.asarray(value), chunks=(row_chunks,))
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D with one entry per row of X for a dask X, got shape {array.shape}")
    if array.shape[0] != sum(row_chunks):
        raise ValueError(f"X and {name} must have the same number of rows, got {sum(row_chunks)} and "
                         f"{array.shape[0]}")
    return array.rechunk((row_chunks,))


class _PenalizedOptimizer:
    """Adds the L2 penalty's gradient :math:`\\alpha W` to the weight matrices' gradients before each step."""

    def __init__(self, optimizer, parameters, penalized, alpha: float):
        self.optimizer, self.parameters, self.penalized, self.alpha = optimizer, parameters, penalized, alpha
        self.penalties: list = []

    @property
    def lr(self):
        return self.optimizer.lr

    @lr.setter
    def lr(self, value):
        self.optimizer.lr = value

    def step(self, gradients) -> None:
        penalty = 0.0
        if self.alpha:
            for index in self.penalized:
                weight = self.parameters[index]
                penalty += 0.5 * self.alpha * float(np.vdot(weight, weight))
                gradients[index] = gradients[index] + self.alpha * weight
        self.penalties.append(penalty)
        self.optimizer.step(gradients)

    def state_dict(self):
        return self.optimizer.state_dict()

    def load_state_dict(self, state):
        self.optimizer.load_state_dict(state)


def fit(estimator, X, y, sample_weight=None):
    """``estimator.fit`` for a dask ``X`` (see the module docstring); returns the estimator."""
    import dask.array as da
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.utils import check_random_state
    from sklearn.utils.multiclass import check_classification_targets

    from .distributed import _default_client, _exceeds_cluster_memory, fit_full_batch, fit_minibatch

    name = type(estimator).__name__
    if estimator._sigmoid:
        raise TypeError(f"{name} does not take dask arrays; SoftmaxClassifier and MLPClassifier do")
    if not is_dask(X):
        raise TypeError(f"X must be a dask array when y or sample_weight is one, got {_describe(X)}")
    if estimator._margin is not None:
        raise ValueError(f"margin={estimator._margin!r} (the large-margin softmax loss) is not available for a dask X: "
                         f"the loss is bound to the output layer of the model in memory; pass margin=None or a "
                         f"NumPy X")
    if estimator.early_stopping:
        raise ValueError("early_stopping=True holds out rows of X in memory, which a dask X is not; pass "
                         "early_stopping=False (or fit on a NumPy array)")
    X = _check_matrix(X)
    row_chunks = X.chunks[0]
    n_samples = X.shape[0]
    if n_samples == 0:
        raise ValueError("X is empty: fit needs at least one sample")
    y = _as_rows(y, row_chunks, "y")
    warm = estimator.warm_start and hasattr(estimator, "model_")
    if warm and X.shape[1] != estimator.n_features_in_:
        raise ValueError(f"X has {X.shape[1]} features, but {name} is expecting {estimator.n_features_in_} "
                         f"features as input")
    estimator._loss = estimator._make_loss()

    classes = np.asarray(da.unique(y).compute())
    check_classification_targets(classes)
    if warm and not np.array_equal(classes, estimator.classes_):
        raise ValueError(f"warm_start=True needs the classes of the previous fit ({estimator.classes_.tolist()}), "
                         f"got {classes.tolist()}")
    if classes.size < 2:
        raise ValueError(f"y has 1 class ({classes.tolist()}); a classifier needs at least 2 classes")
    targets = y.map_blocks(functools.partial(_encode, classes), dtype=np.int64)

    weights = _row_weights(estimator, sample_weight, targets, classes, row_chunks)
    total_weight = float(n_samples) if weights is None else float(weights.sum().compute())
    if total_weight == 0:
        raise ValueError("sample_weight (times class_weight) is zero on every training row; nothing to fit")

    if not warm:
        estimator.n_features_in_ = int(X.shape[1])
        if hasattr(estimator, "feature_names_in_"):
            del estimator.feature_names_in_
        estimator._initialise(X, None, classes, False, np.random.default_rng(
            check_random_state(estimator.random_state).randint(np.iinfo(np.int32).max)))
    else:
        estimator._match_dtype()
        estimator.n_iter_, estimator.loss_curve_ = 0, []
    model = estimator.model_

    def print_iteration(record, _model):
        estimator._print(f"Iteration {record['epoch']}, loss = {record.get('objective', record['train_loss']):.8f}")

    # the estimator's J: the loss summed with weights s_n / sum(s) is the weighted mean, divided once
    normalized = (da.full((n_samples,), 1.0 / n_samples, chunks=(row_chunks,)) if weights is None
                  else weights / total_weight)
    if estimator.solver == "lbfgs":
        history = fit_full_batch(model, X, targets, loss=estimator._loss, sample_weight=normalized,
                                 solver="lbfgs", alpha=estimator.alpha, max_iter=estimator.max_iter,
                                 tol=estimator.tol, callbacks=[print_iteration])
        estimator.n_iter_ += len(history)
        estimator.loss_curve_.extend(history["objective"])
        if len(history) >= estimator.max_iter:
            warnings.warn(f"{name} (lbfgs) stopped after max_iter={estimator.max_iter} iterations before the "
                          f"gradient reached tol={estimator.tol}", ConvergenceWarning, stacklevel=3)
        return estimator

    base_learning_rate = estimator._prepare_optimizer()
    optimizer = _PenalizedOptimizer(estimator._optimizer, model.parameters(), estimator._penalized, estimator.alpha)
    full_batch = estimator.solver == "gd"
    if full_batch:
        loss, batch_size, row_weights, steps_per_epoch = estimator._loss, None, normalized, 1
    else:
        # the batch's own weighted mean: the loss with reduction "mean" and the raw row weights
        loss = type(estimator._loss)(**{**estimator._loss.options, "reduction": "mean"})
        batch_size = min(estimator.batch_size, n_samples)
        row_weights, steps_per_epoch = weights, -(-n_samples // batch_size)
    sampling = "rows"
    client = _default_client()
    too_large = None if full_batch or client is None else _exceeds_cluster_memory(client, X, targets, row_weights)
    if too_large:
        # "rows" would need the data held in the workers' memory; "stream" reads one block at a time
        sampling = "stream"
        steps_per_epoch = sum(-(-rows // batch_size) for rows in row_chunks)
        warnings.warn(f"{too_large}: the minibatches are drawn block by block (crossent.distributed's "
                      f"sampling='stream') instead of from all rows", ResourceWarning, stacklevel=3)
    schedule = estimator._schedule(base_learning_rate, estimator.max_iter * steps_per_epoch)
    state = {"best": np.inf, "waited": 0, "converged": False}

    def convergence(record, _model):
        value = record["train_loss"] + (float(np.mean(optimizer.penalties)) if optimizer.penalties else 0.0)
        optimizer.penalties.clear()
        estimator.n_iter_ += 1
        estimator.loss_curve_.append(value)
        estimator._print(f"Iteration {estimator.n_iter_}, loss = {value:.8f}")
        state["waited"] = 0 if value < state["best"] - estimator.tol else state["waited"] + 1
        state["best"] = min(state["best"], value)
        if state["waited"] >= estimator.n_iter_no_change:
            state["converged"] = True
            return False
        return True

    fit_minibatch(model, X, targets, loss=loss, sample_weight=row_weights, optimizer=optimizer, schedule=schedule,
                  epochs=estimator.max_iter, batch_size=batch_size, sampling=sampling, shuffle=estimator.shuffle,
                  seed=int(estimator._rng.integers(2**31 - 1)), callbacks=[convergence], progress=False)
    if not state["converged"]:
        warnings.warn(f"{name} reached max_iter={estimator.max_iter} epochs before the training loss stopped "
                      f"improving by tol={estimator.tol}", ConvergenceWarning, stacklevel=3)
    return estimator


def _row_weights(estimator, sample_weight, targets, classes, row_chunks):
    """s_n = sample_weight * class weight as a dask array, or None for unit weights."""
    import dask.array as da

    weights = None
    if sample_weight is not None:
        if np.ndim(sample_weight) == 0 and not is_dask(sample_weight):
            value = float(sample_weight)
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"sample_weight must be finite and >= 0, got {value!r}")
            weights = da.full((sum(row_chunks),), value, chunks=(row_chunks,))
        elif not is_dask(sample_weight):
            from .sklearn import _check_sample_weight

            weights = da.from_array(_check_sample_weight(sample_weight, sum(row_chunks)), chunks=(row_chunks,))
        else:
            weights = _as_rows(sample_weight, row_chunks, "sample_weight").astype(np.float64)
            bad = int((~da.isfinite(weights) | (weights < 0)).sum().compute())
            if bad:
                raise ValueError(f"sample_weight must be finite and >= 0; {bad} row(s) are not")
    class_weight = estimator.class_weight
    if class_weight is None:
        return weights
    if class_weight == "balanced":
        counts = np.asarray(da.bincount(targets, minlength=classes.size).compute(), dtype=np.float64)
        present = counts > 0
        per_class = np.ones(classes.size)
        # scikit-learn's "balanced": n_samples / (n_classes present * count of the class)
        per_class[present] = counts.sum() / (np.count_nonzero(present) * counts[present])
    else:
        unknown = [key for key in class_weight if key not in set(classes.tolist())]
        if unknown:
            raise ValueError(f"class_weight has keys {unknown} that are not classes ({classes.tolist()})")
        per_class = np.array([float(class_weight.get(c, 1.0)) for c in classes.tolist()])
        if not np.all(np.isfinite(per_class) & (per_class >= 0)):
            raise ValueError(f"class_weight values must be finite and >= 0, got {class_weight!r}")
    row_class_weight = targets.map_blocks(functools.partial(_class_weights, per_class), dtype=np.float64)
    return row_class_weight if weights is None else weights * row_class_weight


def map_rows(estimator, method, X):
    """``method`` (a prediction method of the fitted estimator) applied to every row block of a dask X."""
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator, "model_")
    X = _check_matrix(X)
    if X.shape[1] != estimator.n_features_in_:
        raise ValueError(f"X has {X.shape[1]} features, but {type(estimator).__name__} is expecting "
                         f"{estimator.n_features_in_} features as input")
    probe = method(np.zeros((1, X.shape[1]), dtype=X.dtype))  # the output's dtype and width
    if probe.ndim == 1:
        return X.map_blocks(method, drop_axis=1, dtype=probe.dtype, meta=np.empty((0,), probe.dtype))
    return X.map_blocks(method, chunks=(X.chunks[0], (probe.shape[1],)), dtype=probe.dtype,
                        meta=np.empty((0, 0), probe.dtype))
