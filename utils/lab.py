"""Open the lessons unmodified in JupyterLab: the student distribution's `make lab` runs
``python -m utils.lab exercises`` just before it starts JupyterLab.

When a notebook's kernel starts, JupyterLab writes that kernel's ``kernelspec`` (its display name,
"Python 3 (ipykernel)") and ``language_info`` (down to the Python patch version, e.g. 3.11.7) into the
notebook, and any difference from what the file holds marks the notebook modified before the student
has run or typed anything. No released notebook can hold every student's Python version, so this
writes the values of the environment that runs it into the notebooks first (only those two metadata
keys; cells, outputs and answers are left as they are).
"""

from __future__ import annotations

import sys
from pathlib import Path


def kernel_metadata() -> dict:
    """The ``kernelspec`` and ``language_info`` JupyterLab records when this environment's ipykernel starts."""
    from ipykernel.ipkernel import IPythonKernel
    from ipykernel.kernelspec import KERNEL_NAME, get_kernel_dict

    spec = get_kernel_dict()
    return {"kernelspec": {"display_name": spec["display_name"], "language": spec["language"], "name": KERNEL_NAME},
            "language_info": dict(IPythonKernel.language_info)}


def stamp(folder: Path | str) -> list[Path]:
    """Write kernel_metadata() into every notebook under `folder` that differs; return the changed ones."""
    import nbformat

    meta, changed = kernel_metadata(), []
    for path in sorted(Path(folder).rglob("*.ipynb")):
        if ".ipynb_checkpoints" in path.parts:
            continue
        nb = nbformat.read(path, as_version=4)
        if all(nb.metadata.get(key) == value for key, value in meta.items()):
            continue
        nb.metadata.update(meta)
        nbformat.write(nb, path)
        changed.append(path)
    return changed


if __name__ == "__main__":
    if len(sys.argv) != 2 or not Path(sys.argv[1]).is_dir():
        raise SystemExit("usage: python -m utils.lab FOLDER (the folder of notebooks JupyterLab will open, e.g. exercises)")
    stamp(sys.argv[1])
