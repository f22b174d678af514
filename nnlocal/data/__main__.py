"""``python -m nnlocal.data``: which datasets are found where."""
import sys

from . import main

sys.exit(main())
