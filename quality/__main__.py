"""``python -m quality``: the engine's command line (no Django needed)."""

import sys

from quality.engine.cli import main

if __name__ == "__main__":
    sys.exit(main(process=True))
