import sys

from sweep._cli import main

sys.exit(main())
