"""``torchrun ... tests/ddp_entry.py FAMILY ...``: ``python -m train`` with the toy families registered."""

import sys

from tests.toy_family import register_toy_families
from train.__main__ import main

register_toy_families()
sys.exit(main(sys.argv[1:]))
