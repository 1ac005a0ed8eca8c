"""`python -m app.cli`: the `slmlab` command without the installed console script."""

import sys

from app.cli.main import main

sys.exit(main())
