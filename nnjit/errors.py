"""User-facing errors: one line that says what is wrong, where, and what to do."""

from __future__ import annotations


class NNJitError(Exception):
    """An error caused by the user's input (model, IR, options, bundle).

    The command-line tools print `error: <message>` on one line and exit with status 1,
    without a traceback. `where` names the model node, IR location or file; `hint` says
    what to do about it.
    """

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None):
        self.message = message
        self.where = where
        self.hint = hint
        super().__init__(self.one_line())

    def one_line(self) -> str:
        parts = []
        if self.where:
            parts.append(f"{self.where}: ")
        parts.append(self.message)
        if self.hint:
            parts.append(f" ({self.hint})")
        return "".join(parts).replace("\n", " ")


class UnsupportedError(NNJitError):
    """The input is valid but nnjit cannot compile it (unknown op, dynamic dims, ...)."""


class ModelFormatError(NNJitError):
    """The model file is missing, truncated or not a valid ONNX model."""


class ShapeError(NNJitError):
    """Inputs given at run time do not match the compiled shapes or dtypes."""
