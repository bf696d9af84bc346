"""localpypi_sync: selective, verified, atomic mirroring of a Python package index into a static tree."""

import sys

__version__ = "0.1.0"


def missing_requirement(exc: ImportError, needed_for: str) -> str:
    """One line for an engine requirement this interpreter cannot import: which, where, and what to install."""
    missing = exc.name or str(exc)
    return (f"{needed_for} needs {missing}, which {sys.executable} cannot import ({exc}); "
            "install the engine's requirements.txt into that environment")
