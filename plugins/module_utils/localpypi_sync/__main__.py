import sys

from . import missing_requirement

try:
    from .cli import main
except ImportError as exc:  # a run from a checkout whose Python lacks the engine's requirements
    sys.stderr.write(f"localpypi-sync: {missing_requirement(exc, 'the engine')}\n")
    sys.exit(2)

sys.exit(main())
