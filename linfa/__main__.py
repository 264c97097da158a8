"""``python -m linfa``: the same as the ``linfa`` command (:mod:`linfa.cli`)."""

import sys

from linfa.cli import main

if __name__ == "__main__":
    sys.exit(main())
