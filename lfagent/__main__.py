"""`python -m lfagent ...`: the same as the `lfagent` command."""
import sys

from lfagent.cli import main

sys.exit(main())
