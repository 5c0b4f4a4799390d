import sys

from socius.app.cli import main

sys.exit(main())
