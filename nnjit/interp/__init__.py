"""Reference interpreters of nnjit's IR (numpy; for tests and for checking passes)."""

from nnjit.interp.nn_tensor_eval import evaluate

__all__ = ["evaluate"]
