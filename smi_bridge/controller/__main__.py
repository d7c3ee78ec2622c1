"""``python -m smi_bridge.controller ARGS``: the same as ``smi-bridge controller ARGS``."""

import sys

from smi_bridge.controller.cli import main

sys.exit(main())
