"""`make colab-check` (maintainer, needs PyPI): what the setup cell's install would change in Colab.

The setup cell runs ``pip install "peft-course @ git+URL"``, which installs pyproject.toml's
``dependencies`` into a runtime that already holds hundreds of packages
(``course/colab/colab-packages.txt``, a dated snapshot). pip keeps an installed package when it
satisfies every requirement ("only if needed"), so this check resolves the same install for
Colab's Python with Colab's torch held, in two passes:

1. resolve the requirements from scratch (``pip install --dry-run --ignore-installed --report``)
   and collect every version specifier the resolved packages place on each other;
2. resolve again with each preinstalled package pinned to its Colab version wherever that version
   satisfies those specifiers: what is left to install is what the setup cell would change.

It lists each preinstalled package whose version changes, fails if torch would change, and
flags the packages a running Colab kernel has usually already imported (numpy, pandas,
pyarrow, matplotlib, ...): replacing those needs a runtime restart, which the setup cell then
asks for (utils/setup_check.py). Writes the report to colab-check/ and prints it.

Example:
    $ python -m course.tools.colab_check --out colab-check
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOT = ROOT / "course" / "colab" / "colab-packages.txt"
# Imported by a fresh Colab kernel before the first cell, or by the first cells of most notebooks
# (pandas imports pyarrow when it is installed). A change to one of these needs a restart.
# An estimate from Colab's kernel set-up (ipykernel, inline matplotlib, pandas/data-table
# formatters); the setup cell checks the real sys.modules at run time.
KERNEL_PRELOADED = {"numpy", "pandas", "pyarrow", "matplotlib", "pillow", "ipykernel", "ipython", "traitlets",
                    "tornado", "pyzmq", "jupyter-client", "jupyter-core", "psutil", "packaging", "requests",
                    "urllib3", "certifi", "charset-normalizer", "idna", "six", "python-dateutil", "pytz", "tzdata",
                    "pygments", "prompt-toolkit", "google-colab", "ipywidgets", "typing-extensions", "pyparsing",
                    "cycler", "kiwisolver", "fonttools", "contourpy", "debugpy", "attrs", "setuptools"}
TORCH_FAMILY = re.compile(r"^(torch|triton|nvidia-.*|cuda-.*)$")
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"]
# Preinstalled packages that are not part of the install but depend on what it changes: their own
# requirements are read (metadata only) and checked against the new versions.
DEPENDENTS = ["diffusers", "gcsfs", "gradio", "sentence-transformers", "timm"]


def canonical(name: str) -> str:
    """PEP 503 name: 'PyYAML' -> 'pyyaml', 'typing_extensions' -> 'typing-extensions'."""
    return re.sub(r"[-_.]+", "-", name).lower()


def base_version(version: str) -> str:
    """'2.11.0+cu128' -> '2.11.0'."""
    return version.split("+", 1)[0]


def read_snapshot(path: Path = SNAPSHOT) -> tuple[str, dict[str, str]]:
    """(Python version, {canonical name: version}) from a pip-freeze style snapshot with comments."""
    python, packages = None, {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if "==" not in line:
            raise ValueError(f"{path}: cannot read {line!r}; write one 'name==version' per line.")
        name, version = (s.strip() for s in line.split("==", 1))
        if name == "python":
            python = version
        else:
            packages[canonical(name)] = version
    if python is None or "torch" not in packages:
        raise ValueError(f"{path} must name Colab's python and torch versions (python==3.13, torch==...).")
    return python, packages


def course_requirements(root: Path = ROOT) -> list[str]:
    """What the setup cell installs (`peft-course[colab]`): pyproject's dependencies plus the colab extra."""
    meta = tomllib.loads(Path(root, "pyproject.toml").read_text())["project"]
    return meta["dependencies"] + meta.get("optional-dependencies", {}).get("colab", [])


def find_python(version: str) -> list[str]:
    """A command that runs pip under Colab's Python version: that interpreter if present, else --python-version."""
    candidates = [shutil.which(f"python{version}")] + sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}*/bin/python{version}")))
    for exe in filter(None, candidates):
        if subprocess.run([exe, "-m", "pip", "--version"], capture_output=True).returncode == 0:
            return [exe, "-m", "pip"]
    return [sys.executable, "-m", "pip", "--python-version", version, "--only-binary=:all:", "--implementation", "cp"] + \
        [arg for p in PLATFORMS for arg in ("--platform", p)]


def resolve(pip: list[str], requirements: list[str], pins: dict[str, str], workdir: Path, tag: str) -> dict:
    """pip's dry-run install report for `requirements` with `pins` as constraints."""
    constraints = workdir / f"constraints-{tag}.txt"
    constraints.write_text("".join(f"{n}=={v}\n" for n, v in sorted(pins.items())))
    report = workdir / f"pip-report-{tag}.json"
    cmd = pip[:3] + ["install", "--dry-run", "--ignore-installed", "--quiet", "--report", str(report),
                     "-c", str(constraints)] + pip[3:] + requirements
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"pip could not resolve the install ({tag}): " + (proc.stderr.strip().splitlines() or ["?"])[-1])
    return json.loads(report.read_text())


def specifiers(report: dict, requirements: list[str], python: str) -> dict[str, list[str]]:
    """Every version specifier the requirements and the resolved packages place on each package name."""
    from packaging.markers import default_environment
    from packaging.requirements import Requirement

    env = {**default_environment(), "python_version": python, "python_full_version": f"{python}.0",
           "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64", "extra": ""}
    found: dict[str, list[str]] = {}
    reqs = list(requirements)
    for item in report["install"]:
        reqs += item["metadata"].get("requires_dist", []) or []
    for text in reqs:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        found.setdefault(canonical(req.name), []).append(str(req.specifier))
    return found


def satisfies(version: str, specs: list[str]) -> bool:
    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    v = Version(base_version(version))
    return all(v in SpecifierSet(s, prereleases=True) for s in specs)


def analyse(report: dict, colab: dict[str, str]) -> dict:
    """Compare a resolved install with Colab's snapshot: what changes, what is new, what needs a restart."""
    changes, new = [], []
    for item in report["install"]:
        name, version = canonical(item["metadata"]["name"]), item["metadata"]["version"]
        if name not in colab:
            new.append({"name": name, "version": version})
        elif base_version(colab[name]) != base_version(version):
            changes.append({"name": name, "from": colab[name], "to": version,
                            "preloaded": name in KERNEL_PRELOADED, "torch_family": bool(TORCH_FAMILY.match(name))})
    torch_changes = [c for c in changes if c["torch_family"]]
    return {"changes": changes, "new": new, "torch_changes": torch_changes,
            "restart_needed_for": [c["name"] for c in changes if c["preloaded"]], "ok": not torch_changes}


def _only_needed_by_torch(report: dict) -> set[str]:
    """Resolved packages that only torch (or another of them) requires: Colab's torch build brings its own."""
    from packaging.requirements import Requirement

    needed_by: dict[str, set[str]] = {}
    for item in report["install"]:
        for text in item["metadata"].get("requires_dist", []) or []:
            needed_by.setdefault(canonical(Requirement(text).name), set()).add(canonical(item["metadata"]["name"]))
    own = {"torch"}
    changed = True
    while changed:
        changed = False
        for name, users in needed_by.items():
            if name not in own and users and users <= own:
                own.add(name)
                changed = True
    return own - {"torch"}


def check(out: Path, root: Path = ROOT) -> dict:
    """Run both passes, write out/colab-check.json and .txt, return the analysis."""
    out.mkdir(parents=True, exist_ok=True)
    python, colab = read_snapshot(root / "course" / "colab" / "colab-packages.txt")
    requirements = course_requirements(root)
    pip = find_python(python)
    torch_pin = {"torch": base_version(colab["torch"])}
    report = resolve(pip, requirements, torch_pin, out, "fresh")
    held: dict[str, str] = {}
    for attempt in range(1, 5):   # hold what Colab already satisfies, until nothing more can be held
        specs = specifiers(report, requirements, python)
        resolved = {canonical(i["metadata"]["name"]) for i in report["install"]}
        more = {n: base_version(v) for n, v in colab.items()
                if n in resolved and n not in held and satisfies(v, specs.get(n, []))}
        if not more and attempt > 1:
            break
        held.update(more)
        report = resolve(pip, requirements, {**held, **torch_pin}, out, f"colab-{attempt}")
    specs = specifiers(report, requirements, python)
    blocked = {n: specs.get(n, []) for n in sorted(set(colab) - set(held))}
    second = report
    # pip skips what Colab already has, and torch's own CUDA libraries come with Colab's torch build
    torch_own = _only_needed_by_torch(second)
    second["install"] = [i for i in second["install"]
                         if base_version(colab.get(canonical(i["metadata"]["name"]), "")) != base_version(i["metadata"]["version"])
                         and canonical(i["metadata"]["name"]) not in torch_own]
    result = {"python": python, "pip": " ".join(pip[:3]), "requirements": requirements,
              "held_with_torch": sorted(torch_own),
              "blocked_by": {n: [s for s in v if s] for n, v in blocked.items()}, **analyse(second, colab)}
    result["breaks"] = broken_dependents(pip, colab, result["changes"], python, out)
    (out / "colab-check.json").write_text(json.dumps(result, indent=1))
    text = report_text(result)
    (out / "colab-check.txt").write_text(text)
    print(text)
    return result


def broken_dependents(pip: list[str], colab: dict[str, str], changes: list[dict], python: str, workdir: Path) -> list[str]:
    """Preinstalled DEPENDENTS whose requirements the changed versions violate (pip would warn about each)."""
    from packaging.requirements import Requirement

    present = {n: base_version(colab[n]) for n in DEPENDENTS if n in colab}
    if not present or not changes:
        return []
    report = workdir / "pip-report-dependents.json"
    cmd = pip[:3] + ["install", "--dry-run", "--ignore-installed", "--no-deps", "--quiet", "--report", str(report)] + \
        pip[3:] + [f"{n}=={v}" for n, v in present.items()]
    if subprocess.run(cmd, capture_output=True).returncode != 0:
        return [f"could not read the requirements of {sorted(present)}"]
    new = {c["name"]: c["to"] for c in changes}
    out = []
    for item in json.loads(report.read_text())["install"]:
        for text in item["metadata"].get("requires_dist", []) or []:
            req = Requirement(text)
            name = canonical(req.name)
            if name in new and (req.marker is None or "extra" not in str(req.marker)) and not satisfies(new[name], [str(req.specifier)]):
                out.append(f"{item['metadata']['name']} {item['metadata']['version']} requires {req.name}{req.specifier}, "
                           f"the install brings {new[name]}")
    return out


def report_text(r: dict) -> str:
    lines = [f"Colab check: Python {r['python']} ({r['pip']}), the setup cell's install resolved with Colab's torch held.",
             f"preinstalled packages that would change ({len(r['changes'])}):"]
    for c in r["changes"]:
        why = ", ".join(r["blocked_by"].get(c["name"], [])) or "required by a new package"
        flag = "  RESTART: a running kernel usually has it imported" if c["preloaded"] else ""
        lines.append(f"  {c['name']:<22} {c['from']:>14} -> {c['to']:<12} needs {why}{flag}")
    lines.append(f"new packages ({len(r['new'])}): " + ", ".join(f"{n['name']} {n['version']}" for n in r["new"]))
    for b in r.get("breaks", []):
        lines.append(f"BREAKS a preinstalled package (pip prints a red conflict warning): {b}")
    if r["torch_changes"]:
        lines.append("FAIL: the install would replace Colab's torch build: " +
                     ", ".join(f"{c['name']} {c['from']} -> {c['to']}" for c in r["torch_changes"]))
    else:
        lines.append("torch stays at Colab's build.")
    if r["restart_needed_for"]:
        lines.append("A restart is needed after the first install (already imported by the kernel): " +
                     ", ".join(r["restart_needed_for"]) + "; the setup cell says so.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m course.tools.colab_check", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("colab-check"))
    args = parser.parse_args(argv)
    result = check(args.out)
    if not result["ok"]:
        sys.exit("colab-check failed: the setup cell would replace Colab's torch (see above).")


if __name__ == "__main__":
    main()
