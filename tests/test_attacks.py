"""FGSM and PGD (crossent.attacks), adversarial training in fit, and `crossent attack` / `train --adversarial`.

References: PyTorch autograd for the input gradient, FGSM and every PGD
iterate (same weights, float64); the geometry (ball, range, random start
distribution) checked directly; the loss ordering on trained digits models.
"""

import json

import numpy as np
import pytest

import crossent
from crossent import attacks, nn
from crossent.attacks import AdversarialTraining, NormalizedModel, fgsm, pgd, robust_accuracy
from crossent.cli import main
from crossent.datasets import Normalizer, load_digits

EPS_GRID = (0.0, 0.02, 0.05, 0.1, 0.2)


@pytest.fixture(scope="module")
def digits():
    X_train, y_train, X_test, y_test = load_digits()  # pixels scaled to [0, 1]
    return X_train, y_train, X_test[:200], y_test[:200]


def _train(model, digits, epochs=10, **options):
    X_train, y_train, _, _ = digits
    crossent.fit(model, X_train, y_train, optimizer="momentum", epochs=epochs, batch_size=32, progress=False,
                 **options)
    return model


@pytest.fixture(scope="module")
def trained(digits):
    X_train, y_train, _, _ = digits
    normalizer = Normalizer("standardize").fit(X_train)
    standardized = nn.MLP(64, [32], 10, seed=0)
    _train(standardized, (normalizer.transform(X_train), y_train, None, None))
    return {
        "softmax": _train(nn.SoftmaxRegression(64, 10), digits),
        "mlp": _train(nn.MLP(64, [32], 10, seed=0), digits),
        "standardized mlp": (standardized, normalizer),  # trained on standardised pixels
    }


def _mean_loss(model, X, y) -> float:
    return float(crossent.evaluate(model, X, y)["loss"])


def _float64_twin(model):
    twin = nn.model_from_config({**model.config(), "dtype": "float64"})
    for mine, theirs in zip(twin.parameters(), model.parameters()):
        mine[...] = theirs
    return twin


# --------------------------------------------------------------------------- loss and geometry


@pytest.mark.parametrize("kind", ["softmax", "mlp"])
@pytest.mark.parametrize("attack", ["fgsm", "pgd"])
def test_mean_loss_grows_with_eps(trained, digits, kind, attack):
    model, (_, _, X, y) = trained[kind], digits
    options = {"steps": 10, "seed": 0} if attack == "pgd" else {}
    losses = [_mean_loss(model, attacks.ATTACKS[attack](model, X, y, eps, **options), y) for eps in EPS_GRID]
    assert losses[0] == pytest.approx(_mean_loss(model, X, y), rel=1e-6)  # eps 0 changes nothing
    assert np.all(np.diff(losses) > 0), losses


@pytest.mark.parametrize("norm", ["inf", "2"])
@pytest.mark.parametrize("attack", ["fgsm", "pgd"])
def test_adversarial_inputs_stay_in_the_ball_and_the_range(trained, digits, attack, norm):
    model, (_, _, X, y) = trained["mlp"], digits
    eps = 0.3 if norm == "inf" else 1.5
    options = {"steps": 15, "seed": 1} if attack == "pgd" else {}
    adversarial = attacks.ATTACKS[attack](model, X, y, eps, norm=norm, **options)
    assert adversarial.dtype == np.float32 and adversarial.shape == X.shape
    assert adversarial.min() >= 0.0 and adversarial.max() <= 1.0
    perturbation = adversarial.astype(np.float64) - X
    lengths = np.abs(perturbation).max(axis=1) if norm == "inf" else np.linalg.norm(perturbation, axis=1)
    assert lengths.max() <= eps * (1 + 1e-6)
    # without a range the same attack leaves [0, 1] (the clipping above did something) and reaches the
    # sphere (the projection is not tighter than the ball)
    free = attacks.ATTACKS[attack](model, X, y, eps, norm=norm, clip=None, **options)
    assert free.min() < 0 or free.max() > 1
    free_lengths = np.abs(free - X).max(axis=1) if norm == "inf" else np.linalg.norm(free - X, axis=1)
    assert free_lengths.max() <= eps * (1 + 1e-6)
    assert np.median(free_lengths) >= eps * (1 - 1e-6)


@pytest.mark.parametrize("kind", ["softmax", "mlp"])
def test_pgd_beats_fgsm(trained, digits, kind):
    model, (_, _, X, y) = trained[kind], digits
    eps = 0.1
    fgsm_inputs = fgsm(model, X, y, eps)
    pgd_inputs = pgd(model, X, y, eps, steps=20, seed=0)
    assert _mean_loss(model, pgd_inputs, y) > _mean_loss(model, fgsm_inputs, y)
    assert robust_accuracy(model, X, y, eps, steps=20, seed=0) <= robust_accuracy(model, X, y, eps, attack="fgsm")
    assert robust_accuracy(model, X, y, 0.0, attack="fgsm") == pytest.approx(crossent.evaluate(model, X, y)["accuracy"])


@pytest.mark.parametrize("norm", ["inf", "2"])
def test_random_start_is_uniform_in_the_ball(norm):
    # zero weights: the input gradient vanishes and PGD returns its random start unchanged
    model = nn.SoftmaxRegression(2, 3, dtype=np.float64)
    X, y, eps = np.full((20000, 2), 0.5), np.zeros(20000, dtype=np.int64), 0.3
    start = pgd(model, X, y, eps, steps=1, seed=0, clip=None) - X
    assert np.array_equal(start, pgd(model, X, y, eps, steps=1, seed=0, clip=None) - X)  # same seed, same start
    assert not np.array_equal(start, pgd(model, X, y, eps, steps=1, seed=1, clip=None) - X)
    assert np.abs(start.mean(axis=0)).max() < 0.01
    if norm == "inf":
        assert np.abs(start).max() <= eps
        # U[-eps, eps] per coordinate: half of the mass within eps / 2
        assert np.mean(np.abs(start) < eps / 2) == pytest.approx(0.5, abs=0.02)
    else:
        start = pgd(model, X, y, eps, steps=1, seed=0, norm="2", clip=None) - X
        radii = np.linalg.norm(start, axis=1)
        assert radii.max() <= eps * (1 + 1e-12)
        # uniform in the disc's area: P(r < eps / sqrt 2) = 1/2 (uniform radii would give 0.71)
        assert np.mean(radii < eps / np.sqrt(2)) == pytest.approx(0.5, abs=0.02)
        angles = np.arctan2(start[:, 1], start[:, 0])
        assert np.histogram(angles, bins=4, range=(-np.pi, np.pi))[0] / 20000 == pytest.approx([0.25] * 4, abs=0.02)


def test_attacks_do_not_modify_their_inputs_and_zero_gradient_rows_stay(trained, digits):
    model, (_, _, X, y) = trained["softmax"], digits
    before = X.copy()
    pgd(model, X, y, 0.1, steps=3, seed=0)
    fgsm(model, X, y, 0.1, norm="2")
    assert np.array_equal(X, before)
    flat = nn.SoftmaxRegression(64, 10)  # zero weights: zero input gradient
    assert np.array_equal(fgsm(flat, X, y, 0.1, norm="2"), X)
    assert np.array_equal(pgd(flat, X, y, 0.1, random_start=False), X)


# --------------------------------------------------------------------------- PyTorch as the oracle


def _torch_network(model):
    torch = pytest.importorskip("torch")
    layers = []
    for layer in model.network.layers:
        if isinstance(layer, nn.Linear):
            linear = torch.nn.Linear(layer.in_features, layer.out_features, dtype=torch.float64)
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(layer.weight.astype(np.float64)))
                linear.bias.copy_(torch.from_numpy(layer.bias.astype(np.float64)))
            layers.append(linear)
        else:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def _torch_direction(torch, gradient, norm):
    if norm == "inf":
        return gradient.sign()
    lengths = gradient.norm(dim=1, keepdim=True)
    return torch.where(lengths > 0, gradient / lengths, torch.zeros_like(gradient))


def _torch_gradient(torch, network, x, labels, scale):
    x = x.detach().requires_grad_(True)
    inputs = x if scale is None else (x - scale[0]) / scale[1]
    loss = torch.nn.functional.cross_entropy(network(inputs), labels)
    (gradient,) = torch.autograd.grad(loss, x)
    return gradient


def _torch_pgd_iterates(torch, network, X, labels, eps, alpha, steps, norm, scale=None):
    """Madry et al.'s PGD from the clean input, written with autograd: every iterate."""
    x, iterates = X.clone(), []
    for _ in range(steps):
        gradient = _torch_gradient(torch, network, x, labels, scale)
        x = x + alpha * _torch_direction(torch, gradient, norm)
        if norm == "inf":
            x = torch.min(torch.max(x, X - eps), X + eps)
        else:
            delta = x - X
            lengths = delta.norm(dim=1, keepdim=True)
            delta = delta * torch.clamp(eps / lengths, max=1.0)
            x = X + delta
        x = x.clamp(0.0, 1.0)
        iterates.append(x.numpy().copy())
    return iterates


def _direction_tolerance(norm):
    # sign(g) is exact unless an entry is within rounding of 0; g / |g|_2 inherits the cancellation error
    # of a tiny gradient (relative 1e-9 at worst on these rows), times the step
    return 1e-12 if norm == "inf" else 1e-9


@pytest.mark.parametrize("norm", ["inf", "2"])
@pytest.mark.parametrize("normalized", [False, True])
def test_fgsm_equals_pytorch(trained, digits, norm, normalized):
    torch = pytest.importorskip("torch")
    if normalized:  # the model sees standardised inputs; the attack works on the raw pixels
        model, normalizer = trained["standardized mlp"]
    else:
        model = trained["mlp"]
    model = _float64_twin(model)
    _, _, X, y = digits
    X = X.astype(np.float64)
    network, scale, attacked = _torch_network(model), None, model
    if normalized:
        attacked = NormalizedModel(model, normalizer)
        scale = (torch.from_numpy(normalizer.offset), torch.from_numpy(normalizer.scale))
    eps = 0.1 if norm == "inf" else 0.8
    gradient = _torch_gradient(torch, network, torch.from_numpy(X), torch.from_numpy(y), scale)
    expected = (torch.from_numpy(X) + eps * _torch_direction(torch, gradient, norm)).clamp(0.0, 1.0).numpy()
    ours = fgsm(attacked, X, y, eps, norm=norm)
    # a confident row's gradient is tiny and comes from p_y - 1, which cancels: its entries carry absolute
    # errors of about float64's epsilon / N times the weights (up to 4e-16 here, 1/s included), not relative ones
    np.testing.assert_allclose(attacked.input_gradient(X, y), gradient.numpy(), rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=_direction_tolerance(norm))
    assert np.mean(ours != X) > 0.5  # most pixels moved


@pytest.mark.parametrize("norm", ["inf", "2"])
def test_pgd_without_random_start_equals_pytorch_step_by_step(trained, digits, norm):
    torch = pytest.importorskip("torch")
    model = _float64_twin(trained["mlp"])
    _, _, X, y = digits
    X = X.astype(np.float64)
    eps, alpha, steps = (0.1, 0.03, 6) if norm == "inf" else (0.8, 0.25, 6)
    expected = _torch_pgd_iterates(torch, _torch_network(model), torch.from_numpy(X), torch.from_numpy(y),
                                   eps, alpha, steps, norm)
    for step in range(1, steps + 1):
        ours = pgd(model, X, y, eps, step=alpha, steps=step, norm=norm, random_start=False)
        np.testing.assert_allclose(ours, expected[step - 1], rtol=0, atol=_direction_tolerance(norm),
                                   err_msg=f"iterate {step}")
    assert not np.allclose(expected[-1], expected[1])  # the iterates keep moving


# --------------------------------------------------------------------------- adversarial training


def test_pgd_training_improves_robust_accuracy(digits):
    _, _, X, y = digits
    standard = _train(nn.SoftmaxRegression(64, 10), digits, epochs=15)
    robust = _train(nn.SoftmaxRegression(64, 10), digits, epochs=15, adversarial="pgd",
                    adversarial_options={"eps": 0.1, "steps": 5})
    attack = {"steps": 20, "seed": 0}
    standard_accuracy = robust_accuracy(standard, X, y, 0.1, **attack)
    robust_accuracy_ = robust_accuracy(robust, X, y, 0.1, **attack)
    assert robust_accuracy_ > standard_accuracy + 0.05, (standard_accuracy, robust_accuracy_)


def test_adversarial_training_is_reproducible_and_mixes_by_ratio(digits):
    def run(seed):
        model = nn.MLP(64, [16], 10, seed=0)
        _train(model, digits, epochs=2, seed=seed, adversarial="pgd", adversarial_options={"eps": 0.1, "steps": 2})
        return model.parameters()

    first, again, other = run(0), run(0), run(1)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))

    model, (_, _, X, y) = _train(nn.SoftmaxRegression(64, 10), digits, epochs=1), digits
    half = AdversarialTraining("fgsm", eps=0.1, ratio=0.5)
    batch = half.perturb(model, X[:10], y[:10], None, np.random.default_rng(0))
    assert np.array_equal(batch[5:], X[5:10])
    assert np.array_equal(batch[:5], fgsm(model, X[:5], y[:5], 0.1))
    assert np.array_equal(AdversarialTraining("fgsm", eps=0.1).perturb(model, X[:10], y[:10], None, None),
                          fgsm(model, X[:10], y[:10], 0.1))


def test_adversarial_training_through_a_normalizer_attacks_raw_inputs(digits):
    X_train, y_train, X, y = digits
    normalizer = Normalizer("standardize").fit(X_train)
    model = nn.SoftmaxRegression(64, 10)
    history = crossent.fit(NormalizedModel(model, normalizer), X_train, y_train, epochs=2, progress=False,
                           adversarial="fgsm", adversarial_options={"eps": 0.05})
    assert len(history) == 2
    with pytest.raises(ValueError, match=r"clip=\(0, 1\).*NormalizedModel"):  # standardised X is outside [0, 1]
        crossent.fit(model, normalizer.transform(X_train), y_train, epochs=1, progress=False,
                     adversarial="fgsm", adversarial_options={"eps": 0.05})


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("call,error,pattern", [
    (lambda m, X, y: fgsm(m, X, y, -0.1), ValueError, r"eps must lie in \[0, inf\], got -0.1"),
    (lambda m, X, y: fgsm(m, X, y, float("nan")), ValueError, "eps must be a number, got nan"),
    (lambda m, X, y: fgsm(m, X, y, 0.1, norm="1"), ValueError, "norm must be 'inf' or '2', got '1'"),
    (lambda m, X, y: fgsm(m, X, y, 0.1, clip=(1.0, 0.0)), ValueError, r"clip must be a range .* got \(1.0, 0.0\)"),
    (lambda m, X, y: fgsm(m, X, y, 0.1, clip=1.0), TypeError, "clip must be None or a pair"),
    (lambda m, X, y: fgsm(m, X + 1.5, y, 0.1), ValueError, r"X must lie in the clip range \[0, 1\].* found 1.5"),
    (lambda m, X, y: fgsm("model", X, y, 0.1), TypeError, "model must be a crossent model"),
    (lambda m, X, y: pgd(m, X, y, 0.1, steps=0), ValueError, "steps must be a positive integer, got 0"),
    (lambda m, X, y: pgd(m, X, y, 0.1, steps=2.5), TypeError, "steps must be an integer, got 2.5"),
    (lambda m, X, y: pgd(m, X, y, 0.1, step=0.0), ValueError, r"step must lie in \(0, inf\], got 0.0"),
    (lambda m, X, y: pgd(m, X, y, 0.1, seed=-1), ValueError, "seed must be a non-negative integer, got -1"),
    (lambda m, X, y: pgd(m, X, y, 0.1, random_start="yes"), TypeError, "random_start must be True or False"),
    (lambda m, X, y: robust_accuracy(m, X, y, 0.1, attack="cw"), ValueError, "attack must be one of"),
])
def test_attack_arguments_are_checked(trained, digits, call, error, pattern):
    _, _, X, y = digits
    with pytest.raises(error, match=pattern):
        call(trained["softmax"], X[:5], y[:5])


@pytest.mark.parametrize("adversarial,options,pattern", [
    ("cw", {"eps": 0.1}, "adversarial must be None, 'fgsm' or 'pgd', got 'cw'"),
    ("pgd", {"steps": 3}, "adversarial_options must give 'eps'"),
    ("fgsm", {"eps": 0.1, "steps": 3}, r"adversarial_options\['steps'\] applies to 'pgd' only"),
    ("pgd", {"eps": 0.1, "restarts": 3}, "unknown key 'restarts'"),
    ("pgd", {"eps": 0.1, "ratio": 0.0}, r"ratio must lie in \(0, 1\], got 0.0"),
    (None, {"eps": 0.1}, "adversarial_options is given but adversarial is None"),
])
def test_fit_checks_adversarial_options(digits, adversarial, options, pattern):
    X_train, y_train, _, _ = digits
    with pytest.raises(ValueError, match=pattern):
        crossent.fit(nn.SoftmaxRegression(64, 10), X_train[:64], y_train[:64], epochs=1, progress=False,
                     adversarial=adversarial, adversarial_options=options)


# --------------------------------------------------------------------------- command line


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("attack") / "digits.npz"
    assert main(["train", "--epochs", "5", "--quiet", "--save", str(path)]) == 0
    return path


def test_cli_attack_prints_clean_and_robust_accuracy(model_file, tmp_path, capsys):
    metrics = tmp_path / "attack.json"
    assert main(["attack", str(model_file), "--eps", "0.02", "0.1", "--steps", "5", "--limit", "100",
                 "--metrics-out", str(metrics)]) == 0
    out = capsys.readouterr().out
    assert "PGD, L-inf ball, 5 steps" in out and "standardize normalisation is applied after" in out
    table = [line.split() for line in out.splitlines() if line.strip().startswith(("0.02", "0.1 "))]
    assert [row[0] for row in table] == ["0.02", "0.1"]
    written = json.loads(metrics.read_text())
    assert written["n_samples"] == 100 and written["clip"] == [0.0, 1.0]
    robust = [row["robust_accuracy"] for row in written["results"]]
    assert written["clean_accuracy"] > robust[0] > robust[1]
    assert table[0][2] == f"{100 * robust[0]:.2f}%"
    # the same numbers from the library, with the saved normaliser in front of the model
    checkpoint = crossent.load_checkpoint(model_file)
    raw_model = NormalizedModel(checkpoint.model, Normalizer.from_state(checkpoint.metadata["normalizer"]))
    _, _, X, y = load_digits()
    assert robust[1] == robust_accuracy(raw_model, X[:100], y[:100], 0.1, steps=5, seed=0)

    assert main(["attack", str(model_file), "--eps", "0.1", "--attack", "fgsm", "--norm", "2"]) == 0
    assert "FGSM, L2 ball" in capsys.readouterr().out


@pytest.mark.parametrize("argv,message", [
    (["--eps", "-0.1"], "--eps must lie in [0, inf), got -0.1"),
    (["--eps", "0.1", "--attack", "fgsm", "--steps", "5"], "--steps applies to --attack pgd only"),
    (["--eps", "0.1", "--steps", "0"], "--steps must lie in [1, inf), got 0"),
    (["--eps", "0.1", "--clip", "1", "0"], "--clip takes LOW HIGH with LOW < HIGH"),
    (["--eps", "0.1", "--clip", "0.2", "0.8"], "X must lie in the clip range [0.2, 0.8]"),
    (["--eps", "0.1", "--norm", "1"], "argument --norm: invalid choice"),
    ([], "the following arguments are required: --eps"),
])
def test_cli_attack_errors_are_one_line(model_file, argv, message, capsys):
    assert main(["attack", str(model_file), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("crossent attack: error:") and err.count("\n") == 1 and message in err


def test_cli_attack_missing_model_file(tmp_path, capsys):
    assert main(["attack", str(tmp_path / "none.npz"), "--eps", "0.1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "none.npz" in err


def test_cli_train_adversarial(tmp_path, capsys):
    metrics = tmp_path / "train.json"
    assert main(["train", "--epochs", "2", "--adversarial", "pgd", "--adv-eps", "0.1", "--adv-steps", "3",
                 "--metrics-out", str(metrics)]) == 0
    assert "adversarial training: PGD, L-inf ball, 3 steps" in capsys.readouterr().out
    arguments = json.loads(metrics.read_text())["arguments"]
    assert (arguments["adversarial"], arguments["adv_eps"], arguments["adv_steps"]) == ("pgd", 0.1, 3)


@pytest.mark.parametrize("argv,message", [
    (["--adversarial", "pgd"], "--adversarial pgd needs --adv-eps"),
    (["--adv-eps", "0.1"], "--adv-eps needs --adversarial fgsm or pgd"),
    (["--adversarial", "fgsm", "--adv-eps", "0.1", "--adv-steps", "3"], "--adv-steps applies to --adversarial pgd"),
    (["--adversarial", "pgd", "--adv-eps", "0.1", "--adv-ratio", "2"], "--adv-ratio must lie in (0, 1], got 2.0"),
])
def test_cli_train_adversarial_errors(argv, message, capsys):
    assert main(["train", "--epochs", "1", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("crossent train: error:") and err.count("\n") == 1 and message in err
