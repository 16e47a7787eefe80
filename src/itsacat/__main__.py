import sys

from itsacat.cli import main

sys.exit(main())
