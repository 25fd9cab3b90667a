"""The unlearning methods, by name (see :mod:`models.approximate.methods.base`)."""

from models.approximate.methods import finetune, gradient, retrain, salun, ssd  # noqa: F401
from models.approximate.methods.base import Context, Method, get_method, method_names

__all__ = ["Context", "Method", "get_method", "method_names"]
