import sys

from lfagent.cli import main

sys.exit(main())
