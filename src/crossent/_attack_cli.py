"""``crossent attack`` (clean vs robust accuracy of a saved model) and ``crossent train --adversarial``.

Both work in the data set's own units -- pixels scaled to [0, 1] for the image
data sets -- before the normalisation the model was trained with: ``--eps``
and the clip range mean the same thing for every model, however it scales its
inputs, and a pixel budget of 0.1 is 0.1 of the pixel range for every pixel
(in standardised units it would depend on each pixel's standard deviation, and
the [0, 1] box would become a different box per pixel). The attack
differentiates through the saved normaliser (:class:`crossent.attacks.NormalizedModel`).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from typing import TYPE_CHECKING, Any

from .attacks import ATTACKS, AdversarialTraining, NormalizedModel

if TYPE_CHECKING:
    from .cli import UsageError

#: data sets whose loader scales inputs to [0, 1]: the default clip range; files come as stored (no range)
UNIT_RANGE_DATASETS = ("digits", "mnist", "fashion-mnist")
DEFAULT_ATTACK_STEPS = 40
DEFAULT_TRAINING_STEPS = 10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``crossent attack``."""
    from .cli import _add_data_arguments

    parser.add_argument("model_file", metavar="MODEL", help="a model saved by 'crossent train --save' or crossent.save")
    _add_data_arguments(parser)
    parser.add_argument("--eps", type=float, nargs="+", required=True, metavar="EPS",
                        help="radii of the attack's ball, in the data set's units (pixels in [0, 1]), e.g. 0.1 0.2")
    parser.add_argument("--attack", choices=list(ATTACKS), default="pgd", help="(default: pgd)")
    parser.add_argument("--norm", choices=["inf", "2"], default="inf", help="the ball's norm (default: inf)")
    parser.add_argument("--steps", type=int, help=f"PGD steps (default: {DEFAULT_ATTACK_STEPS})")
    parser.add_argument("--step", type=float, help="PGD step size (default: 2.5 * eps / steps)")
    parser.add_argument("--no-random-start", action="store_true", dest="no_random_start",
                        help="start PGD at the clean input instead of a uniform random point of the ball")
    parser.add_argument("--seed", type=int, default=0, help="seed of PGD's random start (default: 0)")
    parser.add_argument("--clip", type=float, nargs=2, metavar=("LOW", "HIGH"),
                        help="valid input range (default: 0 1 for digits, mnist, fashion-mnist; none for files)")
    parser.add_argument("--no-clip", action="store_true", dest="no_clip", help="no input range")
    parser.add_argument("--limit", type=int, metavar="N", help="attack only the first N test rows")
    parser.add_argument("--metrics-out", metavar="FILE.json", dest="metrics_out",
                        help="write clean and robust accuracy and loss per eps as JSON")


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``--adversarial`` options of ``crossent train``."""
    parser.add_argument("--adversarial", choices=list(ATTACKS),
                        help="adversarial training: attack every minibatch before its step (needs --adv-eps); "
                             "inputs kept in [0, 1] for digits, mnist, fashion-mnist, unbounded for files")
    parser.add_argument("--adv-eps", type=float, dest="adv_eps", metavar="EPS",
                        help="radius of the training attack's ball, in the data set's units (pixels in [0, 1])")
    parser.add_argument("--adv-norm", choices=["inf", "2"], dest="adv_norm", help="(default: inf)")
    parser.add_argument("--adv-steps", type=int, dest="adv_steps",
                        help=f"PGD steps of the training attack (default: {DEFAULT_TRAINING_STEPS})")
    parser.add_argument("--adv-step", type=float, dest="adv_step", help="PGD step size (default: 2.5 * eps / steps)")
    parser.add_argument("--adv-ratio", type=float, dest="adv_ratio",
                        help="fraction of each minibatch replaced by attacked rows (default: 1)")


#: the settings ``crossent train`` records (and a resumed run keeps) for adversarial training
TRAINING_SETTINGS = ("adversarial", "adv_eps", "adv_norm", "adv_steps", "adv_step", "adv_ratio")


def _usage_error(message: str) -> UsageError:
    from .cli import UsageError

    return UsageError(message)


def _check_number(
    value: float | None, flag: str, *, low: float, low_inclusive: bool = True, high: float | None = None
) -> None:
    if value is None:
        return
    too_low = value < low or (value == low and not low_inclusive)
    if not math.isfinite(value) or too_low or (high is not None and value > high):
        interval = f"{'[' if low_inclusive else '('}{low:g}, {'inf)' if high is None else f'{high:g}]'}"
        raise _usage_error(f"{flag} must lie in {interval}, got {value!r}")


def clip_range(args: argparse.Namespace, info: dict[str, Any]) -> tuple[float, float] | None:
    """``--clip``, ``--no-clip``, or the data set's default range."""
    if args.no_clip and args.clip is not None:
        raise _usage_error("--clip and --no-clip exclude each other")
    if args.no_clip:
        return None
    if args.clip is not None:
        low, high = args.clip
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise _usage_error(f"--clip takes LOW HIGH with LOW < HIGH, got {low!r} {high!r}")
        return (low, high)
    return (0.0, 1.0) if info["name"] in UNIT_RANGE_DATASETS else None


def _describe_attack(
    name: str, norm: str, steps: int | None, step: float | None, random_start: str | None,
    clip: tuple[float, float] | None,
) -> str:
    """``random_start``: how the start is seeded, or None for no random start."""
    ball = "L-inf" if norm == "inf" else "L2"
    text = f"{name.upper()}, {ball} ball"
    if name == "pgd":
        text += f", {steps} steps of " + ("2.5*eps/steps" if step is None else f"{step:g}")
        text += ", no random start" if random_start is None else f", random start ({random_start})"
    return text + (", no input range" if clip is None else f", inputs kept in [{clip[0]:g}, {clip[1]:g}]")


def adversarial_training(args: argparse.Namespace, info: dict[str, Any]) -> AdversarialTraining | None:
    """The AdversarialTraining of ``crossent train --adversarial ...`` (None without it)."""
    given = [key for key in TRAINING_SETTINGS[1:] if getattr(args, key, None) is not None]
    if args.adversarial is None:
        if given:
            raise _usage_error(f"--{given[0].replace('_', '-')} needs --adversarial fgsm or pgd")
        return None
    if args.adv_eps is None:
        raise _usage_error(f"--adversarial {args.adversarial} needs --adv-eps, the radius of the attack's ball")
    if args.adversarial == "fgsm":
        stray = [key for key in ("adv_steps", "adv_step") if key in given]
        if stray:
            raise _usage_error(f"--{stray[0].replace('_', '-')} applies to --adversarial pgd only")
    _check_number(args.adv_eps, "--adv-eps", low=0.0)
    _check_number(args.adv_steps, "--adv-steps", low=1)
    _check_number(args.adv_step, "--adv-step", low=0.0, low_inclusive=False)
    _check_number(args.adv_ratio, "--adv-ratio", low=0.0, low_inclusive=False, high=1.0)
    options = {"eps": args.adv_eps, "norm": args.adv_norm or "inf",
               "ratio": 1.0 if args.adv_ratio is None else args.adv_ratio,
               "clip": (0.0, 1.0) if info["name"] in UNIT_RANGE_DATASETS else None}
    if args.adversarial == "pgd":
        options.update(steps=args.adv_steps or DEFAULT_TRAINING_STEPS, step=args.adv_step)
    return AdversarialTraining(args.adversarial, **options)


def describe_training(adversary: AdversarialTraining) -> str:
    """One line for the header of ``crossent train``."""
    text = _describe_attack(adversary.attack, adversary.norm, adversary.steps, adversary.step,
                            "seeded by (seed, epoch, step)" if adversary.random_start else None, adversary.clip)
    share = "every row" if adversary.ratio == 1 else f"a share of {adversary.ratio:g}"
    return (f"adversarial training: {text}, eps {adversary.eps:g} in the data set's units (before "
            f"normalisation); {share} of each batch attacked")


def run(args: argparse.Namespace) -> int:
    """``crossent attack``: clean and robust accuracy of a saved model for each ``--eps``, as a table."""
    from ._io import atomic_output
    from .cli import _check_compatible, _check_output_path, _load_data, _targets
    from .datasets import Normalizer
    from .serialization import load_checkpoint
    from .train import evaluate

    _check_output_path(args.metrics_out, "--metrics-out")
    for eps in args.eps:
        _check_number(eps, "--eps", low=0.0)
    if args.attack == "fgsm":
        for flag, value in (("--steps", args.steps), ("--step", args.step),
                            ("--no-random-start", args.no_random_start or None)):
            if value is not None:
                raise _usage_error(f"{flag} applies to --attack pgd only")
    _check_number(args.steps, "--steps", low=1)
    _check_number(args.step, "--step", low=0.0, low_inclusive=False)
    _check_number(args.limit, "--limit", low=1)
    if args.seed < 0:
        raise _usage_error(f"--seed must be a non-negative integer, got {args.seed}")

    checkpoint = load_checkpoint(args.model_file)
    model = checkpoint.model
    _, _, X_test, y_test, info = _load_data(args)
    _check_compatible(model, info, args.model_file)
    clip = clip_range(args, info)
    if args.limit is not None:
        X_test, y_test = X_test[: args.limit], y_test[: args.limit]
    normalizer_state = checkpoint.metadata.get("normalizer")
    normalizer = Normalizer.from_state(normalizer_state) if normalizer_state else None
    # attack the raw inputs, where eps and the clip range are defined; the normaliser is part of the model
    attacked = model if normalizer is None or normalizer.method == "none" else NormalizedModel(model, normalizer)
    target = _targets(y_test, checkpoint.extra.get("target_form", "labels"), info["n_classes"])
    options = {"norm": args.norm, "clip": clip}
    steps = None
    if args.attack == "pgd":
        steps = args.steps or DEFAULT_ATTACK_STEPS
        options.update(steps=steps, step=args.step, random_start=not args.no_random_start, seed=args.seed)

    clean = evaluate(attacked, X_test, target)
    rows = []
    for eps in args.eps:
        started = time.perf_counter()
        adversarial = ATTACKS[args.attack](attacked, X_test, target, eps, **options)
        seconds = time.perf_counter() - started
        report = evaluate(attacked, adversarial, target)
        step = None if args.attack == "fgsm" else (2.5 * eps / steps if args.step is None else args.step)
        rows.append({"eps": eps, "robust_accuracy": report["accuracy"], "adversarial_loss": report["loss"],
                     "step": step, "attack_time_s": seconds})

    scaling = (
        "" if normalizer is None or attacked is model
        else f"; the model's {normalizer.method} normalisation is applied after"
    )
    print(f"{type(model).__name__} from {args.model_file} on {info['name']} test split ({len(X_test):,} rows)")
    start = None if args.no_random_start else f"seed {args.seed}"
    print(f"attack: {_describe_attack(args.attack, args.norm, steps, args.step, start, clip)}; "
          f"eps in the data set's units{scaling}")
    print()
    print(f"{'eps':>8}  {'clean acc':>9}  {'robust acc':>10}  {'clean loss':>10}  {'adv loss':>9}  {'time':>7}")
    for row in rows:
        print(f"{row['eps']:>8.4g}  {100 * clean['accuracy']:>8.2f}%  {100 * row['robust_accuracy']:>9.2f}%  "
              f"{clean['loss']:>10.4f}  {row['adversarial_loss']:>9.4f}  {row['attack_time_s']:>6.2f}s")
    if args.metrics_out:
        metrics = {
            "model_file": str(args.model_file), "dataset": info["name"], "n_samples": int(len(X_test)),
            "attack": args.attack, "norm": args.norm, "steps": steps,
            "random_start": None if args.attack == "fgsm" else not args.no_random_start,
            "seed": None if args.attack == "fgsm" else args.seed, "clip": None if clip is None else list(clip),
            "normalizer": None if normalizer is None else normalizer.method, "loss": "the model's default",
            "clean_accuracy": clean["accuracy"], "clean_loss": clean["loss"], "results": rows,
        }
        with atomic_output(args.metrics_out) as file:
            file.write((json.dumps(metrics, indent=1) + "\n").encode())
        print(f"metrics written to {args.metrics_out}")
    return 0
