"""``python -m pff`` runs the command line (also under ``torchrun -m pff``)."""
from __future__ import annotations

import sys

from pff.cli import main

sys.exit(main())
