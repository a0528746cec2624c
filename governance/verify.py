"""``python -m governance.verify``: the offline verifier's entry point (see ``governance.kernel.verify``)."""

import sys

from governance.kernel.verify import main

if __name__ == "__main__":
    sys.exit(main())
