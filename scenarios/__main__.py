import sys

from socius.scenarios.cli import main

sys.exit(main())
