"""After the setup cell's pip install: does the running kernel need a restart?

Colab preloads packages (numpy, pandas, pyarrow, matplotlib, ...) into its kernel before any
cell runs. If the course's install replaces one of them on disk, the kernel keeps running the
old copy from memory, mixed with new copies of whatever it imports next: typical symptoms are
``numpy.dtype size changed`` or pyarrow ``undefined symbol`` errors several cells later. The only
cure is a restart, after which the setup cell finds everything installed and does nothing.

This module uses only the standard library: the setup cell imports it right after installing
the course package, before anything heavy is imported. Taught nowhere; used by every lesson's
setup cell (see ``course.tools.classroom.SETUP_CELL``).

Example:
    >>> import types
    >>> from utils import setup_check
    >>> setup_check.stale_modules({"yaml": types.SimpleNamespace(__version__="0.1")}, {"yaml": ["PyYAML"]},
    ...                           version_of=lambda dist: "6.0.4")
    [('yaml', 'PyYAML', '0.1', '6.0.4')]
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import re
import sys


def _base(version: str) -> str:
    """The release numbers only: '2.11.0+cu128' -> '2.11.0', '2026.10.19.post1' -> '2026.10.19'.

    A module's ``__version__`` often omits a local label or a post-release suffix that its
    distribution carries (certifi 2026.10.19 is distribution 2026.10.19.post1); comparing those
    would ask for a restart that can never help.
    """
    match = re.match(r"\d+(?:\.\d+)*", str(version).strip())
    return match.group(0) if match else str(version).strip()


def stale_modules(modules=None, mapping=None, version_of=md.version) -> list[tuple[str, str, str, str]]:
    """Top-level modules loaded in this process whose package on disk now has another version.

    Returns (module, distribution, loaded version, version on disk) for each one. A module is
    compared through its ``__version__``; modules without one, or not installed from a
    distribution, are left alone.
    """
    modules = sys.modules if modules is None else modules
    if mapping is None:
        importlib.invalidate_caches()
        mapping = md.packages_distributions()
    stale = []
    for name, module in sorted(list(modules.items()), key=lambda kv: kv[0]):
        if "." in name or name.startswith("_") or name not in mapping:
            continue
        loaded = getattr(module, "__version__", None)
        if not isinstance(loaded, str):
            continue
        for dist in mapping[name]:
            try:
                on_disk = version_of(dist)
            except md.PackageNotFoundError:
                continue
            if _base(on_disk) != _base(loaded):
                stale.append((name, dist, loaded, on_disk))
                break
    return stale


def restart_message(stale: list[tuple[str, str, str, str]]) -> str | None:
    """One sentence asking for a restart when `stale` is not empty, else None."""
    if not stale:
        return None
    changed = ", ".join(f"{dist} {old} -> {new}" for _, dist, old, new in stale)
    return (f"The install replaced packages this kernel had already loaded ({changed}): restart the runtime "
            "(Runtime > Restart session) and run this cell again.")


def warn_if_restart_needed(modules=None) -> bool:
    """Print the restart sentence if the install changed an already-loaded package; return True then."""
    message = restart_message(stale_modules(modules))
    if message:
        print(message)
    return message is not None


def stop_if_restart_needed(modules=None) -> None:
    """Stop the cell (and a "Run all") with the restart sentence if the install changed a loaded package."""
    message = restart_message(stale_modules(modules))
    if message:
        raise SystemExit(message)
