"""The engine's one error type for bad input."""

from __future__ import annotations


class EngineInputError(ValueError):
    """Input the engine cannot evaluate.

    ``code`` is stable (clients and the Django side key on it), ``location`` says where
    (a JSON path such as ``annotations[12].segmentation`` or a file name).
    """

    def __init__(self, code: str, message: str, *, location: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.location = location

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "location": self.location}

    def __str__(self) -> str:
        where = f" at {self.location}" if self.location else ""
        return f"{self.code}: {self.message}{where}"
