"""``python -m socius.app`` is the ``socius`` command (``mpiexec -n N python -m mpi4py -m socius.app run ...``)."""
import sys

from socius.app.cli import main

sys.exit(main())
