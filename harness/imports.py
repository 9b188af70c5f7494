"""Loading the user's ``MODULE:ATTRIBUTE`` targets (``python:`` models and metrics).

The current directory is importable, as with ``python -m``, so ``python:my_app:predict``
finds ``./my_app.py``. A missing module, a module that fails to import, or a missing
attribute is one line naming the target, never a traceback.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

from harness.errors import HarnessError

__all__ = ["load_object"]


def load_object(target: str, *, what: str, error: type[HarnessError], form: str) -> Any:
    """``module.sub:attr.path`` -> the object; ``what`` names it in errors (``python model``).

    ``form`` is how the target should look (``python:MODULE:FUNCTION``), for the error a
    malformed one gets.
    """
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise error(f"{what} {target!r} must look like {form}")
    cwd = str(Path.cwd())
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        raise error(f"{what} {target!r}: no module named {e.name!r}") from None
    except Exception as e:  # the user's module failed at import: say where, not a traceback
        raise error(
            f"{what} {target!r}: importing {module_name} failed: {type(e).__name__}: {e}"
        ) from e
    found: Any = module
    for part in attr.split("."):
        found = getattr(found, part, None)
        if found is None:
            raise error(f"{what} {target!r}: {module_name} has no {attr!r}")
    return found
