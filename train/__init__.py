"""Training entry points: ``python -m train <family> ...`` (see ``python -m train --help``)."""
