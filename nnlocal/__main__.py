"""``python -m nnlocal``: the ``nnlocal`` command."""
import sys

from .cli import main

sys.exit(main())
