import sys

from fixgate.cli import main

sys.exit(main())
