"""Where the JSON schemas live, one answer for every module that reads them.

In a checkout (and an editable install) they are the repository's top-level ``schemas/``; a wheel
carries the same files as the package ``smi_bridge._schemas`` (pyproject maps the one onto the
other). The package copy wins when it exists, so an installed wheel never reads an unrelated
``schemas`` directory that happens to sit beside it in site-packages.
"""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def schema_dir() -> Path:
    packaged = _HERE / "_schemas"
    if packaged.is_dir():
        return packaged
    return _HERE.parent / "schemas"


SCHEMA_DIR = schema_dir()
PROXY_CONFIG_SCHEMA = SCHEMA_DIR / "proxy-config.schema.json"
