"""localpypi_sync: selective, verified, atomic mirroring of a Python package index into a static tree."""

__version__ = "0.1.0"
