"""``python -m simreal ...`` (also ``torchrun -m simreal ...``): the ``simreal`` command."""

import os
import sys

from simreal.cli.main import main

code = main()
if int(os.environ.get("WORLD_SIZE", "1")) > 1:
    # A data-parallel worker: its work is written and its process group left; skip the interpreter's teardown,
    # where Gloo's worker threads can abort the process ("terminate called without an active exception").
    import logging

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(int(code or 0))
sys.exit(code)
