"""A generated package index served on 127.0.0.1: the upstream every test and demo mirrors from."""

from .build import Catalog, FixtureFile, dependency_catalog, sdist_bytes, standard_catalog, wheel_bytes
from .server import Faults, self_signed_certificate, serve_mirror, serve_proxy, serve_upstream

__all__ = ["Catalog", "Faults", "FixtureFile", "dependency_catalog", "sdist_bytes", "self_signed_certificate",
           "serve_mirror", "serve_proxy", "serve_upstream", "standard_catalog", "wheel_bytes"]
