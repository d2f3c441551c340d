"""One small exception tree. Every message says what was wrong and how to fix it.

The CLI prints ``str(error)`` as one line and exits non-zero; servers map ``status`` onto HTTP.
"""
from __future__ import annotations


class SimulacraError(Exception):
    status = 500


class ConfigError(SimulacraError):
    """A config file, em folder or option is wrong."""

    status = 400


class InputError(SimulacraError):
    """Bad input from a person or a file: non-UTF-8 text, malformed data, bad arguments."""

    status = 400


class ModelNotFound(SimulacraError):
    status = 404


class ModelError(SimulacraError):
    """A model file exists but cannot be used: corrupt, wrong hash, wrong format."""


class EngineError(SimulacraError):
    """The completion engine failed while generating."""

    status = 502


class EngineUnavailable(EngineError):
    """A remote engine cannot be reached."""

    status = 503


class ToolError(SimulacraError):
    """A tool was called wrongly or failed; agent loops show this to the model."""

    status = 400


class MissingDependency(SimulacraError):
    """An optional extra is not installed; the message carries the install command."""

    def __init__(self, package: str, extra: str):
        super().__init__(f"{package} is not installed: run  pip install 'simulacra[{extra}]'")
        self.package, self.extra = package, extra


def require(module: str, extra: str):
    """Import an optional heavy dependency, or raise MissingDependency naming the extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependency(module.split(".")[0], extra) from None
