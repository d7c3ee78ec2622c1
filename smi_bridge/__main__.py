"""``python -m smi_bridge``: the same as the ``smi-bridge`` command."""

from smi_bridge.cli import main

raise SystemExit(main())
