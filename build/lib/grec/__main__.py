import sys

from grec.cli import main

sys.exit(main())
