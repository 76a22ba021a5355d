"""crossent.torch: autograd functions over crossent's losses, checked against PyTorch itself.

Oracles: torch.autograd.gradcheck (finite differences, float64), torch.nn.functional.cross_entropy
where both libraries have the option, and losses written out in plain torch operations (the (N, C)
weight matrix, focal loss, softcapped linear layer) differentiated by torch's own autograd.
"""

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

import crossent  # noqa: E402
import crossent.torch as ct  # noqa: E402

DOUBLE = torch.float64


def make_generator(seed=0):
    return torch.Generator().manual_seed(seed)


def random_logits(shape, dtype=DOUBLE, seed=0):
    return (2 * torch.randn(*shape, generator=make_generator(seed), dtype=dtype)).requires_grad_()


def random_labels(shape, n_classes, seed=1):
    return torch.randint(0, n_classes, shape, generator=make_generator(seed))


def random_probabilities(shape, axis=1, seed=2):
    return torch.softmax(torch.randn(*shape, generator=make_generator(seed), dtype=DOUBLE), axis)


def value_and_grad(function, logits, *args, grad_output=None, **kwargs):
    """The value and d(sum of grad_output * value)/d(logits) of ``function`` at a fresh leaf copy of ``logits``."""
    leaf = logits.detach().clone().requires_grad_()
    value = function(leaf, *args, **kwargs)
    (value if grad_output is None else value * grad_output).sum().backward()
    return value.detach(), leaf.grad


# ---------------------------------------------------------------------------- import isolation


def test_import_crossent_does_not_import_torch():
    code = "import sys, crossent; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


# ---------------------------------------------------------------------------- cross_entropy: gradcheck

CROSS_ENTROPY_CASES = {
    "labels": dict(),
    "probabilities": dict(probabilities=True),
    "class weight": dict(weight=True),
    "ignore_index": dict(ignore_index=True),
    "label_smoothing": dict(label_smoothing=0.2),
    "z_loss": dict(z_loss=0.01),
    "everything": dict(weight=True, ignore_index=True, label_smoothing=0.1, z_loss=0.02),
    "probabilities weighted smoothed": dict(probabilities=True, weight=True, label_smoothing=0.3),
    "sample_weight": dict(sample_weight=True),
}


def build_case(case, shape, seed=0):
    """(logits, target, kwargs of cross_entropy) for a case; class axis 1."""
    n_classes = shape[1]
    row_shape = shape[:1] + shape[2:]
    logits = random_logits(shape, seed=seed)
    if case.get("probabilities"):
        target = random_probabilities(shape)
    else:
        target = random_labels(row_shape, n_classes)
        if case.get("ignore_index"):
            target = target.clone()
            target.view(-1)[::3] = -100
    kwargs = {}
    if case.get("weight"):
        kwargs["weight"] = torch.linspace(0.5, 2.0, n_classes, dtype=DOUBLE)
    if case.get("ignore_index"):
        kwargs["ignore_index"] = -100
    if case.get("sample_weight"):
        kwargs["sample_weight"] = torch.rand(*row_shape, generator=make_generator(5), dtype=DOUBLE)
    for name in ("label_smoothing", "z_loss"):
        if name in case:
            kwargs[name] = case[name]
    return logits, target, kwargs


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(5, 4), (3, 4, 2)], ids=["NC", "NCd"])
@pytest.mark.parametrize("case", CROSS_ENTROPY_CASES.values(), ids=CROSS_ENTROPY_CASES.keys())
def test_cross_entropy_gradcheck(case, shape, reduction):
    logits, target, kwargs = build_case(case, shape)

    def function(x):
        return ct.cross_entropy(x, target, reduction=reduction, **kwargs)

    assert torch.autograd.gradcheck(function, (logits,), eps=1e-6, atol=1e-8, rtol=1e-6)


# ---------------------------------------------------------------------------- cross_entropy vs torch

TORCH_CASES = {key: value for key, value in CROSS_ENTROPY_CASES.items() if "z_loss" not in value
               and "sample_weight" not in value}


@pytest.mark.parametrize(
    "dtype, tolerance", [(torch.float64, 1e-10), (torch.float32, 1e-5)], ids=["float64", "float32"]
)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(6, 5), (3, 5, 4)], ids=["NC", "NCd"])
@pytest.mark.parametrize("case", TORCH_CASES.values(), ids=TORCH_CASES.keys())
def test_cross_entropy_matches_torch(case, shape, reduction, dtype, tolerance):
    logits, target, kwargs = build_case(case, shape)
    logits = logits.detach().to(dtype)
    if target.is_floating_point():
        target = target.to(dtype)
    if "weight" in kwargs:
        kwargs["weight"] = kwargs["weight"].to(dtype)
    row_shape = shape[:1] + shape[2:]
    grad_output = None
    if reduction == "none":  # a non-uniform upstream gradient checks the broadcast over the class axis
        grad_output = torch.rand(*row_shape, generator=make_generator(9), dtype=dtype) + 0.5
    torch_kwargs = dict(kwargs)
    torch_kwargs.setdefault("ignore_index", -100)
    ours, our_grad = value_and_grad(ct.cross_entropy, logits, target, reduction=reduction,
                                    grad_output=grad_output, **kwargs)
    theirs, their_grad = value_and_grad(F.cross_entropy, logits, target, reduction=reduction,
                                        grad_output=grad_output, **torch_kwargs)
    assert ours.dtype == dtype and ours.shape == theirs.shape
    assert our_grad.dtype == dtype and our_grad.shape == logits.shape
    torch.testing.assert_close(ours, theirs, rtol=tolerance, atol=tolerance)
    torch.testing.assert_close(our_grad, their_grad, rtol=tolerance, atol=tolerance)


def test_cross_entropy_large_batch_uses_fused_kernels_and_matches_torch():
    # 40000 elements: above COMPILED_MIN_ELEMENTS, so the "auto" backend takes the compiled kernel
    logits = random_logits((400, 100), dtype=torch.float32, seed=3).detach()
    target = random_labels((400,), 100)
    assert crossent.kernels.use_compiled(logits.numel()) == (crossent.kernels.backend() != "numpy")
    ours, our_grad = value_and_grad(ct.cross_entropy, logits, target, label_smoothing=0.1)
    theirs, their_grad = value_and_grad(F.cross_entropy, logits, target, label_smoothing=0.1)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(our_grad, their_grad, rtol=1e-5, atol=1e-7)


def test_cross_entropy_per_sample_class_weight_matrix():
    # torch has no (N, C) weights: the reference is the formula in torch operations, differentiated by torch
    logits = random_logits((6, 4))
    target = random_labels((6,), 4)
    weight = torch.rand(6, 4, generator=make_generator(7), dtype=DOUBLE) + 0.1
    leaf = logits.detach().clone().requires_grad_()
    picked = weight.gather(1, target[:, None])[:, 0]
    reference = -(picked * torch.log_softmax(leaf, 1).gather(1, target[:, None])[:, 0]).sum() / picked.sum()
    reference.backward()
    ours, our_grad = value_and_grad(ct.cross_entropy, logits, target, weight=weight)
    torch.testing.assert_close(ours, reference.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(our_grad, leaf.grad, rtol=1e-12, atol=1e-12)
    assert torch.autograd.gradcheck(lambda x: ct.cross_entropy(x, target, weight=weight), (logits,))
    # a row of the matrix that differs from the others changes the result: the matrix is really used
    other = weight.clone()
    other[0] *= 3
    assert not torch.isclose(ct.cross_entropy(logits, target, weight=other), ours)


def test_cross_entropy_class_axis_last_and_non_contiguous_input():
    logits = random_logits((4, 3, 5)).detach()  # (N, C, d)
    target = random_labels((4, 5), 3)
    expected, expected_grad = value_and_grad(F.cross_entropy, logits, target)
    # the same numbers with the classes last (a non-contiguous view) and axis=-1
    moved = logits.transpose(1, 2)
    assert not moved.is_contiguous()
    leaf = moved.detach().clone().transpose(1, 2).contiguous().transpose(1, 2).requires_grad_()
    value = ct.cross_entropy(leaf, target, axis=-1)
    value.backward()
    torch.testing.assert_close(value.detach(), expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(leaf.grad.transpose(1, 2), expected_grad, rtol=1e-12, atol=1e-12)


def test_cross_entropy_shares_memory_with_contiguous_input(monkeypatch):
    seen = []
    original = crossent.softmax_cross_entropy_value_and_grad

    def spy(logits, *args, **kwargs):
        seen.append(logits)
        return original(logits, *args, **kwargs)

    monkeypatch.setattr(crossent, "softmax_cross_entropy_value_and_grad", spy)
    logits = random_logits((4, 3))
    ct.cross_entropy(logits, random_labels((4,), 3)).backward()
    assert len(seen) == 1 and np.shares_memory(seen[0], logits.detach().numpy())


def test_cross_entropy_without_grad_and_backward_twice():
    logits = random_logits((5, 4))
    target = random_labels((5,), 4)
    with torch.no_grad():
        value = ct.cross_entropy(logits, target)
    assert value.grad_fn is None
    torch.testing.assert_close(value, F.cross_entropy(logits.detach(), target), rtol=1e-12, atol=0)
    # retain_graph: the saved gradient is not consumed or changed by the first backward
    loss = ct.cross_entropy(logits, target)
    loss.backward(retain_graph=True)
    first = logits.grad.clone()
    loss.backward()
    torch.testing.assert_close(logits.grad, 2 * first, rtol=1e-15, atol=0)


def test_cross_entropy_all_rows_ignored_gives_zero_not_nan():
    logits = random_logits((3, 4))
    value = ct.cross_entropy(logits, torch.full((3,), -100), ignore_index=-100)
    value.backward()
    assert value.item() == 0.0 and torch.count_nonzero(logits.grad) == 0


# ---------------------------------------------------------------------------- linear_cross_entropy

LINEAR_CASES = {
    "plain": dict(),
    "bias": dict(bias=True),
    "bias softcap chunk 2": dict(bias=True, softcap=1.5, chunk_size=2),
    "split vocabulary": dict(bias=True, softcap=2.0, chunk_size=(2, 3)),
    "smoothing weights ignore z_loss": dict(bias=True, label_smoothing=0.2, weight_classes=True,
                                            ignore_index=True, z_loss=0.01, chunk_size=3),
}


def build_linear_case(case, n_rows=5, n_features=3, n_classes=7, dtype=DOUBLE):
    generator = make_generator(11)
    hidden = torch.randn(n_rows, n_features, generator=generator, dtype=dtype).requires_grad_()
    weight = torch.randn(n_classes, n_features, generator=generator, dtype=dtype).requires_grad_()
    bias = torch.randn(n_classes, generator=generator, dtype=dtype).requires_grad_() if case.get("bias") else None
    target = torch.randint(0, n_classes, (n_rows,), generator=generator)
    kwargs = {key: case[key] for key in ("softcap", "chunk_size", "label_smoothing", "z_loss") if key in case}
    if case.get("ignore_index"):
        target[1] = -100
        kwargs["ignore_index"] = -100
    if case.get("weight_classes"):
        kwargs["weight_classes"] = torch.linspace(0.5, 1.5, n_classes, dtype=dtype)
    return hidden, weight, bias, target, kwargs


def linear_reference(hidden, weight, target, bias=None, softcap=None, chunk_size=None, weight_classes=None,
                     z_loss=0.0, ignore_index=-100, **kwargs):
    """The unfused computation in torch operations."""
    logits = hidden @ weight.T + (0 if bias is None else bias)
    if softcap is not None:
        logits = softcap * torch.tanh(logits / softcap)
    assert z_loss == 0.0
    return F.cross_entropy(logits, target, weight=weight_classes, ignore_index=ignore_index, **kwargs)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("case", LINEAR_CASES.values(), ids=LINEAR_CASES.keys())
def test_linear_cross_entropy_gradcheck(case, reduction):
    hidden, weight, bias, target, kwargs = build_linear_case(case)
    inputs = (hidden, weight) if bias is None else (hidden, weight, bias)

    def function(*tensors):
        return ct.linear_cross_entropy(tensors[0], tensors[1], target, bias=tensors[2] if len(tensors) > 2 else None,
                                       reduction=reduction, **kwargs)

    assert torch.autograd.gradcheck(function, inputs, eps=1e-6, atol=1e-8, rtol=1e-6)


@pytest.mark.parametrize(
    "dtype, tolerance", [(torch.float64, 1e-10), (torch.float32, 1e-5)], ids=["float64", "float32"]
)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("case", [c for c in LINEAR_CASES.values() if "z_loss" not in c], ids=[
    k for k, c in LINEAR_CASES.items() if "z_loss" not in c])
def test_linear_cross_entropy_matches_torch(case, reduction, dtype, tolerance):
    hidden, weight, bias, target, kwargs = build_linear_case(case, n_rows=9, dtype=dtype)
    grad_output = torch.rand(9, generator=make_generator(4), dtype=dtype) + 0.5 if reduction == "none" else 1.0
    results = []
    for function in (ct.linear_cross_entropy, linear_reference):
        leaves = [t.detach().clone().requires_grad_() for t in (hidden, weight) + ((bias,) if bias is not None else ())]
        value = function(leaves[0], leaves[1], target, bias=leaves[2] if len(leaves) > 2 else None,
                         reduction=reduction, **kwargs)
        (value * grad_output).sum().backward()
        results.append((value.detach(), [leaf.grad for leaf in leaves]))
    (ours, our_grads), (theirs, their_grads) = results
    torch.testing.assert_close(ours, theirs, rtol=tolerance, atol=tolerance)
    for our_grad, their_grad in zip(our_grads, their_grads):
        assert our_grad.dtype == dtype
        torch.testing.assert_close(our_grad, their_grad, rtol=tolerance, atol=tolerance)


def test_linear_cross_entropy_gradient_only_where_required():
    hidden, weight, bias, target, _ = build_linear_case({"bias": True})
    frozen_weight = weight.detach()
    loss = ct.linear_cross_entropy(hidden, frozen_weight, target, bias=bias)
    loss.backward()
    assert hidden.grad is not None and bias.grad is not None and frozen_weight.grad is None


# ---------------------------------------------------------------------------- any loss by name


def focal_reference(logits, target, gamma, axis=1):
    log_p = torch.log_softmax(logits, axis).gather(axis, target.unsqueeze(axis)).squeeze(axis)
    return -((1 - log_p.exp()) ** gamma * log_p)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(5, 4), (3, 4, 2)], ids=["NC", "NCd"])
def test_focal_loss_by_name(shape, reduction):
    logits = random_logits(shape)
    target = random_labels(shape[:1] + shape[2:], shape[1])
    focal = ct.loss("focal", gamma=2.0, reduction=reduction)
    assert torch.autograd.gradcheck(lambda x: focal(x, target), (logits,), eps=1e-6, atol=1e-8, rtol=1e-6)
    grad_output = torch.rand(shape[:1] + shape[2:], generator=make_generator(3), dtype=DOUBLE) + 0.5
    if reduction != "none":
        grad_output = torch.tensor(0.7, dtype=DOUBLE)

    def reference(x, y):
        rows = focal_reference(x, y, 2.0)
        return {"mean": rows.mean(), "sum": rows.sum(), "none": rows}[reduction]

    ours, our_grad = value_and_grad(focal, logits, target, grad_output=grad_output)
    theirs, their_grad = value_and_grad(reference, logits, target, grad_output=grad_output)
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(our_grad, their_grad, rtol=1e-12, atol=1e-12)


def test_other_losses_by_name():
    logits = random_logits((4, 5))
    target = random_labels((4,), 5)
    for name, options in [("generalized_cross_entropy", dict(q=0.5)), ("symmetric_cross_entropy", {}),
                          ("poly1", dict(epsilon=2.0)), ("cauchy_schwarz", {})]:
        function = ct.loss(name, reduction="none", **options)
        assert torch.autograd.gradcheck(lambda x: function(x, target), (logits,)), name
    # sample_weight is passed per call, as a tensor
    sample_weight = torch.tensor([1.0, 0.0, 2.0, 0.5], dtype=DOUBLE)
    gce = ct.loss("gce", q=0.5, reduction="sum")
    torch.testing.assert_close(
        gce(logits, target, sample_weight=sample_weight),
        (ct.loss("gce", q=0.5, reduction="none")(logits, target) * sample_weight).sum(),
        rtol=1e-12, atol=1e-12,
    )


def test_elementwise_loss_by_name_matches_torch():
    logits = random_logits((4, 3))
    target = torch.rand(4, 3, generator=make_generator(8), dtype=DOUBLE)
    grad_output = torch.rand(4, 3, generator=make_generator(9), dtype=DOUBLE)
    bce = ct.loss("bce_with_logits", reduction="none")
    ours, our_grad = value_and_grad(bce, logits, target, grad_output=grad_output)
    theirs, their_grad = value_and_grad(F.binary_cross_entropy_with_logits, logits, target, reduction="none",
                                        grad_output=grad_output)
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(our_grad, their_grad, rtol=1e-12, atol=1e-12)


def test_loss_object_is_used_as_configured():
    from crossent.losses import FocalLoss

    logits = random_logits((5, 4))
    target = random_labels((5,), 4)
    function = ct.loss(FocalLoss(gamma=1.0, axis=-1))
    torch.testing.assert_close(function(logits, target), focal_reference(logits, target, 1.0).mean(),
                               rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="loss must be one of"):
        ct.loss("no_such_loss")


# ---------------------------------------------------------------------------- modules


def test_modules_match_functions():
    logits = random_logits((6, 4))
    target = random_labels((6,), 4)
    weight = torch.tensor([1.0, 2.0, 0.5, 1.0], dtype=DOUBLE)
    criterion = ct.CrossEntropyLoss(weight=weight, label_smoothing=0.1)
    assert "weight" in dict(criterion.named_buffers())
    torch.testing.assert_close(criterion(logits, target),
                               F.cross_entropy(logits, target, weight=weight, label_smoothing=0.1),
                               rtol=1e-12, atol=1e-12)
    hidden, layer_weight, bias, labels, _ = build_linear_case({"bias": True})
    head = ct.LinearCrossEntropyLoss(softcap=2.0, chunk_size=2, reduction="sum")
    torch.testing.assert_close(head(hidden, layer_weight, labels, bias=bias),
                               linear_reference(hidden, layer_weight, labels, bias=bias, softcap=2.0,
                                                reduction="sum"),
                               rtol=1e-12, atol=1e-12)
    with pytest.raises(TypeError, match="unexpected option 'gamma'"):
        ct.CrossEntropyLoss(gamma=2.0)
    with pytest.raises(TypeError, match="unexpected option 'weight'"):
        ct.LinearCrossEntropyLoss(weight=weight)


# ---------------------------------------------------------------------------- errors


def test_meta_tensor_is_refused_with_its_device():
    logits = torch.empty(4, 3, device="meta")
    with pytest.raises(ValueError, match=r"input must be a CPU tensor .* device 'meta'.*input\.cpu\(\)"):
        ct.cross_entropy(logits, torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="target must be a CPU tensor"):
        ct.cross_entropy(torch.zeros(4, 3), torch.zeros(4, dtype=torch.long, device="meta"))
    with pytest.raises(ValueError, match="weight must be a CPU tensor"):
        ct.linear_cross_entropy(torch.zeros(4, 2), torch.empty(3, 2, device="meta"), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="input must be a CPU tensor"):
        ct.loss("focal")(logits, torch.zeros(4, dtype=torch.long))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_tensor_is_refused():
    with pytest.raises(ValueError, match="device 'cuda"):
        ct.cross_entropy(torch.zeros(4, 3, device="cuda"), torch.zeros(4, dtype=torch.long, device="cuda"))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.int64, torch.complex64])
def test_wrong_input_dtype_is_refused(dtype):
    logits = torch.zeros(4, 3, dtype=dtype)
    with pytest.raises(TypeError, match=f"input must have dtype torch.float32 or torch.float64, got {dtype}"):
        ct.cross_entropy(logits, torch.zeros(4, dtype=torch.long))
    with pytest.raises(TypeError, match="hidden must have dtype"):
        ct.linear_cross_entropy(torch.zeros(4, 2, dtype=dtype), torch.zeros(3, 2), torch.zeros(4, dtype=torch.long))
    with pytest.raises(TypeError, match="must be a torch.Tensor"):
        ct.cross_entropy(np.zeros((4, 3)), np.zeros(4, dtype=int))


def test_target_requiring_grad_is_refused_and_library_errors_pass_through():
    logits = random_logits((4, 3))
    soft = torch.full((4, 3), 1 / 3, dtype=DOUBLE, requires_grad=True)
    with pytest.raises(ValueError, match=r"target requires grad.*target\.detach\(\)"):
        ct.cross_entropy(logits, soft)
    with pytest.raises(ValueError, match="label_smoothing"):
        ct.cross_entropy(logits, torch.zeros(4, dtype=torch.long), label_smoothing=2.0)
    with pytest.raises(ValueError):
        ct.cross_entropy(logits, torch.full((4,), 3))  # label out of range


# ---------------------------------------------------------------------------- training


def train_digits_mlp(criterion, epochs=6, seed=0):
    X_train, y_train, X_test, y_test = crossent.datasets.load_digits(seed=0, dtype=np.float64)
    X_train, y_train = torch.from_numpy(X_train), torch.from_numpy(y_train)
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10)).double()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    order = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(epochs):
        for batch in torch.randperm(len(y_train), generator=order).split(64):
            optimizer.zero_grad()
            loss = criterion(model(X_train[batch]), y_train[batch])
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    with torch.no_grad():
        predictions = model(torch.from_numpy(X_test)).argmax(1).numpy()
    return np.array(losses), float(np.mean(predictions == y_test))


def test_mlp_on_digits_trains_like_torch():
    ours, our_accuracy = train_digits_mlp(ct.CrossEntropyLoss())
    theirs, their_accuracy = train_digits_mlp(F.cross_entropy)
    assert our_accuracy > 0.9
    assert ours[-1] < 0.5 * ours[0]
    np.testing.assert_allclose(ours, theirs, rtol=1e-4)
    assert abs(our_accuracy - their_accuracy) <= 1 / 450
