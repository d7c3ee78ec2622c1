"""smi-bridge: read, lint, convert and translate SMI (Service Mesh Interface) policy."""

__version__ = "0.1.0"
