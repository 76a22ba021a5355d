"""The ``crossent`` command line.

``crossent demo`` walks through the cross-entropy of one example (by default
the cat/dog/bird example: logits 1, 2, 0.5, the true class is dog): softmax,
loss in nats and bits, and the gradient ``softmax - onehot``.
``crossent losses`` lists the losses the library provides.
"""

from __future__ import annotations

import argparse
import inspect
import math
import sys

import numpy as np

from . import __version__


def _demo(args: argparse.Namespace) -> int:
    from .functional import softmax
    from .losses import LOSSES, get_loss

    logits = np.asarray(args.logits, dtype=np.float64)
    classes = args.classes or [f"class {i}" for i in range(logits.size)]
    if len(classes) != logits.size:
        raise SystemExit(
            f"crossent demo: error: --classes names {len(classes)} classes but --logits has "
            f"{logits.size} values"
        )
    if args.target in classes:
        label = classes.index(args.target)
    else:
        try:
            label = int(args.target)
        except ValueError:
            raise SystemExit(
                f"crossent demo: error: --target {args.target!r} is neither one of "
                f"{', '.join(classes)} nor a class number"
            ) from None
        if not 0 <= label < logits.size:
            raise SystemExit(
                f"crossent demo: error: --target {label} is out of range [0, {logits.size - 1}]"
            )
    choices = _demo_losses(LOSSES)
    if args.loss not in choices:
        raise SystemExit(
            f"crossent demo: error: --loss {args.loss!r} is not a loss on logits and class labels; "
            f"choose from {', '.join(choices)}"
        )
    loss = get_loss(args.loss)
    row, target = logits[None, :], np.array([label])
    try:
        value, grad = loss.value_and_grad(row, target)
    except (TypeError, ValueError) as error:
        raise SystemExit(f"crossent demo: error: {error}") from None
    probs = softmax(logits)
    width = max(len(name) for name in classes)
    print(f"logits z = {', '.join(f'{v:g}' for v in logits)}; true class: {classes[label]}")
    print()
    print(f"  {'class':<{width}}  {'logit':>8}  {'softmax p':>9}  {'target y':>8}  {'dL/dz':>9}")
    for i, name in enumerate(classes):
        print(
            f"  {name:<{width}}  {logits[i]:>8.4g}  {probs[i]:>9.4f}  {int(i == label):>8d}  "
            f"{grad[0, i]:>+9.4f}"
        )
    print()
    if args.loss in ("cross_entropy", "softmax_cross_entropy"):
        print(f"{args.loss} loss: {float(value):.4f} nats = {float(value) / math.log(2):.4f} bits")
        print(f"  = -log p[{classes[label]}] = -log {probs[label]:.4f}")
        print("  dL/dz = softmax(z) - onehot(y): the gradient pushes the true class up, the rest down")
    else:
        print(f"{args.loss} loss: {float(value):.4f}")
    return 0


def _demo_losses(registry) -> list:
    """Names of the losses that take logits and class labels and need no extra option."""
    example_logits, example_label = np.array([[1.0, 2.0, 0.5]]), np.array([1])
    names = []
    for name, cls in registry.items():
        if next(iter(inspect.signature(cls.function).parameters)) != "logits":
            continue
        try:
            cls()(example_logits, example_label)
        except (TypeError, ValueError):
            continue  # needs other targets (binary losses) or a required option (sim_loss)
        names.append(name)
    return sorted(names)


def _losses(args: argparse.Namespace) -> int:
    from .losses import LOSSES

    by_class: dict = {}
    for name, cls in LOSSES.items():
        by_class.setdefault(cls, []).append(name)
    for cls, names in by_class.items():
        summary = (cls.function.__doc__ or "").strip().splitlines()[0]
        print(f"{' | '.join(names):<48} {summary}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crossent",
        description="Cross-entropy losses with analytic gradients.",
    )
    parser.add_argument("--version", action="version", version=f"crossent {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="softmax, loss and gradient of one example (default: cat/dog/bird)",
        description="Show softmax, loss and gradient for one example, step by step.",
    )
    demo.add_argument("--logits", type=float, nargs="+", default=[1.0, 2.0, 0.5], metavar="Z",
                      help="the example's logits (default: 1 2 0.5)")
    demo.add_argument("--classes", nargs="+", metavar="NAME",
                      help="class names (default: cat dog bird when --logits is left alone)")
    demo.add_argument("--target", default="dog",
                      help="the true class, by name or number (default: dog)")
    demo.add_argument("--loss", default="cross_entropy",
                      help="a loss name from 'crossent losses' (default: cross_entropy)")
    demo.set_defaults(handler=_demo)

    listing = commands.add_parser("losses", help="list the available losses")
    listing.set_defaults(handler=_losses)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "demo" and args.classes is None:
        if args.logits == [1.0, 2.0, 0.5]:
            args.classes = ["cat", "dog", "bird"]
        elif args.target == "dog":
            args.target = "0"
    return args.handler(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
