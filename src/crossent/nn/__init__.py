"""Layers with hand-derived backward passes, and classifiers built from them."""

from .layers import Dropout, Linear, Module, ReLU, Sequential, Sigmoid, Tanh
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
]
