"""The unlearning methods, by name (see :mod:`models.approximate.methods.base`)."""

from models.approximate.methods import finetune, gradient, retrain, salun, ssd  # noqa: F401
from models.approximate.methods.base import Context, Method, get_method, method_names
from models.approximate.names import EXACT_METHODS

if {n for n in method_names() if get_method(n).exact} != EXACT_METHODS:
    raise ImportError(f"the exact methods differ from names.EXACT_METHODS {sorted(EXACT_METHODS)}")

__all__ = ["Context", "Method", "get_method", "method_names"]
