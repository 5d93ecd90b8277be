"""``python -m cti`` is the ``cti`` command."""

from cti.cli import main

main()
