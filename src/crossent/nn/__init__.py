"""Layers with hand-derived backward passes, and classifiers built from them."""

from .layers import Dropout, Linear, Module, ReLU, Sequential, Sigmoid, Tanh
from .large_margin import (
    LargeMarginCrossEntropy,
    LargeMarginLinear,
    LargeMarginSoftmaxClassifier,
    large_margin_beta,
    large_margin_cross_entropy_value_and_grad,
    large_margin_logits,
    large_margin_psi,
)
from .models import MLP, MODELS, LogisticRegression, Model, SoftmaxRegression, model_from_config

__all__ = [
    "Module",
    "Linear",
    "ReLU",
    "Tanh",
    "Sigmoid",
    "Dropout",
    "Sequential",
    "Model",
    "SoftmaxRegression",
    "LogisticRegression",
    "MLP",
    "MODELS",
    "model_from_config",
    "LargeMarginLinear",
    "LargeMarginCrossEntropy",
    "LargeMarginSoftmaxClassifier",
    "large_margin_logits",
    "large_margin_cross_entropy_value_and_grad",
    "large_margin_psi",
    "large_margin_beta",
]
