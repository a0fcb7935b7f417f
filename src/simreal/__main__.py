"""``python -m simreal ...`` (also ``torchrun -m simreal ...``): the ``simreal`` command."""

import sys

from simreal.cli.main import main

sys.exit(main())
