"""Instructor commands: stamp the repository URL, release with nbgrader, build the student distribution.

Run from the repository root (the Makefile does): ``python -m course.tools.classroom stamp|release|dist``.
Grading and feedback are course/tools/grading.py. Uses nbgrader's Python API and gradebook, never
the exit code of ``nbgrader validate`` (which is 0 even when tests fail). Grading forces the smoke
profile and offline mode (GRADING_ENV) so that it never trains a real model or waits on the network.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tomllib
from pathlib import Path

from course.tools import quiz_authoring
from utils import quiz

# nbgrader stays imported inside the functions that use it: nbgrader_config.py imports this module
# while nbgrader's own apps start, and `make stamp` / the distribution checks run without it.

ROOT = Path(__file__).resolve().parents[2]
IGNORE = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "outputs"]
STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
GRADING_ENV = {"COURSE_PROFILE": "smoke", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
               "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def nbgrader_settings(c, root: Path | str = ROOT, cell_timeout: int | None = None) -> None:
    """Fill a traitlets Config with the course's nbgrader settings (nbgrader_config.py calls this)."""
    root = Path(root)
    c.CourseDirectory.course_id = "peft-course"
    c.CourseDirectory.root = str(root)
    c.CourseDirectory.source_directory = "solutions"
    c.CourseDirectory.release_directory = "exercises"
    c.CourseDirectory.db_url = f"sqlite:///{root / 'gradebook.db'}"
    c.CourseDirectory.ignore = IGNORE
    c.ClearSolutions.code_stub = {"python": STUB}
    c.GenerateAssignment.preprocessors = release_preprocessors()   # the quiz answers cell keeps its dict of None
    c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
    # Per cell: a student's infinite loop is stopped after this many seconds; the rest still runs.
    c.Execute.timeout = cell_timeout or int(os.environ.get("COURSE_CELL_TIMEOUT", "120"))
    c.Execute.interrupt_on_timeout = True
    c.Execute.execute_retries = 0
    c.Execute.kernel_name = "python3"
    # A student who deleted a graded cell: nbgrader puts the instructor's cell back and grades it.
    c.OverwriteCells.add_missing_cells = True


def api(root: Path | str = ROOT, cell_timeout: int | None = None):
    """An NbGraderAPI for the course in `root` (the venv's bin/ goes on PATH: nbgrader runs alembic)."""
    from nbgrader.apps import NbGraderAPI
    from traitlets.config import Config

    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    c = Config()
    nbgrader_settings(c, root, cell_timeout)
    return NbGraderAPI(config=c)


def assignments(root: Path | str = ROOT) -> list[str]:
    """Lesson folders in solutions/ that hold a notebook of the same name."""
    return sorted(p.parent.name for p in Path(root, "solutions").glob("*/*.ipynb") if p.stem == p.parent.name)


# --- stamping the repository URL -----------------------------------------------------------------

def repository_url(root: Path | str = ROOT) -> str:
    """The course repository URL: pyproject.toml [project.urls] Repository (the one place it lives)."""
    meta = tomllib.loads(Path(root, "pyproject.toml").read_text())
    return meta["project"]["urls"]["Repository"].rstrip("/")


def student_url(root: Path | str = ROOT) -> str:
    """The student distribution's URL: pyproject.toml [project.urls] Student-distribution.

    Colab badges and setup cells point there. In self-study mode it may equal the course
    repository; in a graded class it is the public repository built from dist/student/.
    """
    urls = tomllib.loads(Path(root, "pyproject.toml").read_text())["project"]["urls"]
    return urls.get("Student-distribution", urls["Repository"]).rstrip("/")


def stamp(root: Path | str = ROOT) -> list[Path]:
    """Write the student distribution's URL into the setup cells and Colab badges, and the course
    repository URL into the README's clone command; return changed files."""
    url = student_url(root)                    # what Colab installs from and opens: no solutions there
    slug = url.split("github.com/", 1)[-1]
    changed = stamp_setup_cells(root, url)
    paths = [Path(root, "solutions", name, f"{name}.ipynb") for name in assignments(root)]
    paths += [p for p in [Path(root, "README.md")] if p.exists()]
    for path in paths:
        text = path.read_text(encoding="utf-8")
        new = re.sub(r'COURSE_REPO = \\"[^"\\]*\\"', f'COURSE_REPO = \\\\"{url}\\\\"', text)
        new = re.sub(r"colab\.research\.google\.com/github/[^)\"\s]+?/blob/main/exercises/",
                     f"colab.research.google.com/github/{slug}/blob/main/exercises/", new)
        new = re.sub(r"git clone https://github\.com/\S+", f"git clone {repository_url(root)}", new)
        if new != text:
            path.write_text(new, encoding="utf-8")
            changed += [path] if path not in changed else []
    return changed


# --- the setup cell, one text for every lesson ----------------------------------------------------
# `make release` writes it (with the repository URL) over the source of each lesson's locked
# setup cell (nbgrader grade_id "setup"), so a fix here reaches every lesson at the next release.
# In Colab it installs the course package, then stops with one sentence when that install
# replaced a package the kernel had already imported (numpy, pandas, pyarrow, ...): see
# utils/setup_check.py. Elsewhere it only checks that the package is installed.
SETUP_CELL = """\
import importlib
import importlib.metadata
import subprocess
import sys

COURSE_REPO = "{url}"  # stamped by `make release`
try:
    importlib.metadata.version("peft-course")
except importlib.metadata.PackageNotFoundError:
    if "google.colab" not in sys.modules:
        raise ModuleNotFoundError(
            "The course package is not installed in this kernel: run `make lab` in the course folder "
            "(or `pip install -e .` there), then restart the kernel.") from None
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", f"peft-course[colab] @ git+{{COURSE_REPO}}"], check=True)
    importlib.invalidate_caches()
    from utils import setup_check  # standard library only: safe to import before a restart

    setup_check.stop_if_restart_needed()"""


def setup_cell_source(url: str) -> str:
    """The setup cell's code for the repository at `url` (see SETUP_CELL)."""
    return SETUP_CELL.format(url=url)


def stamp_setup_cells(root: Path | str = ROOT, url: str | None = None) -> list[Path]:
    """Replace the source of every lesson's setup cell (grade_id "setup") with SETUP_CELL; return changed files."""
    url = url or repository_url(root)
    source = setup_cell_source(url).splitlines(keepends=True)
    changed = []
    for name in assignments(root):
        path = Path(root, "solutions", name, f"{name}.ipynb")
        text = path.read_text(encoding="utf-8")
        nb = json.loads(text)
        for cell in nb.get("cells", []):
            if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "setup" and cell["source"] != source:
                cell["source"] = source
        new = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"   # nbformat's layout: unchanged lines stay
        if new != text:
            path.write_text(new, encoding="utf-8")
            changed.append(path)
    return changed


# --- release, grade, feedback ------------------------------------------------------------------------

def release(root: Path | str = ROOT) -> None:
    """Stamp, rebuild the hashed quiz banks, and regenerate exercises/ from solutions/."""
    for path in stamp(root):
        print(f"stamped repository URL into {path}")
    if Path(root, "course", "quizzes").exists():
        quiz_authoring.build_all(Path(root, "course", "quizzes"), Path(root, "utils", "quizzes"))
    nb_api = api(root)
    for name in assignments(root):
        result = nb_api.generate_assignment(name, force=True, create=True)
        if not result["success"]:
            raise SystemExit(f"release of {name} failed:\n{result['error']}\n{result['log']}")
        print(f"released exercises/{name}/")
    dist = build_student_distribution(root)
    print(f"built the student distribution in {dist.relative_to(Path(root).resolve())}/ "
          f"(publish it at {student_url(root)}; see course/INSTRUCTORS.md)")


# --- the quiz answers cell on release --------------------------------------------------------------

QUIZ_ANSWERS_ID = "quiz_answers"


def release_preprocessors() -> list:
    """nbgrader's release pipeline, with ClearSolutions replaced by `QuizAwareClearSolutions`."""
    from nbgrader.converters import GenerateAssignment
    from nbgrader.preprocessors import ClearSolutions

    class QuizAwareClearSolutions(ClearSolutions):
        """ClearSolutions, except in the quiz answers cell: its solution region (the keys) is
        removed and nothing is put in its place, so the student gets the dict of None written
        above it and "Run all" goes on to the end instead of stopping at NotImplementedError."""

        def _replace_solution_region(self, cell, language):
            if cell.metadata.get("nbgrader", {}).get("grade_id") != QUIZ_ANSWERS_ID:
                return super()._replace_solution_region(cell, language)
            stubs = self.code_stub
            self.code_stub = {**stubs, language: ""}
            try:
                replaced = super()._replace_solution_region(cell, language)
            finally:
                self.code_stub = stubs
            cell.source = cell.source.rstrip()
            return replaced

    return [QuizAwareClearSolutions if pp is ClearSolutions else pp for pp in GenerateAssignment.preprocessors.default()]


# --- the student distribution ------------------------------------------------------------------------
# dist/student/ is what a graded class publishes (at pyproject's Student-distribution URL): the
# exercise notebooks, the utils package with its practice quiz banks, a README and a Makefile.
# Nothing from solutions/ or course/ (quiz keys, instructor guide, the instructor's and maintainer's
# tools): utils/ holds only what the notebooks import, and it ships whole.

DIST = Path("dist", "student")
STUDENT_README = Path("course", "STUDENT_README.md")


def _lesson_title(nb_path: Path) -> str:
    for cell in json.loads(nb_path.read_text(encoding="utf-8"))["cells"]:
        for line in "".join(cell["source"]).splitlines():
            if cell["cell_type"] == "markdown" and line.startswith("# "):
                return line[2:].split("·", 1)[-1].strip()
    return nb_path.stem


def _student_pyproject(root: Path, url: str) -> str:
    """pyproject.toml for the distribution: same package and pins, its own URL, no instructor URL."""
    text = Path(root, "pyproject.toml").read_text(encoding="utf-8")
    urls = f'[project.urls]\n# This student copy of the course: the exercises and the course package.\nRepository = "{url}"\n\n'
    return re.sub(r"(?ms)^\[project\.urls\]\n.*?(?=^\[)", lambda _: urls, text)


def _student_makefile() -> str:
    # `.[local,lab,demo]`, not dev: no nbgrader (its JupyterLab extension is the instructor's), pytest or test tools;
    # Gradio for the lessons' optional demo cell.
    # TORCH: PyPI's torch for Linux is the CUDA build (about 2.9 GB with its NVIDIA libraries); a Linux machine
    # without `nvidia-smi` takes the CPU wheel from PyTorch's index instead, and falls back to PyPI where that
    # index cannot be reached. macOS and Windows wheels on PyPI are CPU builds already.
    # utils.lab writes this kernel's metadata into the lessons, so that JupyterLab does not mark them modified on open.
    return """# The student copy of the course: `make lab` sets up .venv (pinned packages) and opens JupyterLab.
# PyTorch: on Linux without an NVIDIA GPU the CPU build (a 183 MiB wheel instead of PyPI's 2.9 GB CUDA
# build); force a choice with `make lab TORCH=cpu` or `make lab TORCH=pypi`.
PYTHON ?= python3
BIN    := .venv/bin
TORCH  ?= $(if $(filter Linux,$(shell uname -s)),$(if $(shell command -v nvidia-smi),pypi,cpu),pypi)
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu

.PHONY: setup lab clean
setup: .venv/.installed
.venv/.installed: pyproject.toml
\t@test -x $(BIN)/python || $(PYTHON) -m venv .venv
\t@$(if $(filter cpu,$(TORCH)),echo "PyTorch: the CPU build (TORCH=cpu)"; $(BIN)/python -m pip install -q --retries 1 --timeout 20 --index-url $(TORCH_CPU_INDEX) "torch==2.13.0" \\
\t\t|| echo "could not reach $(TORCH_CPU_INDEX): PyTorch comes from PyPI instead (the CUDA build on Linux, about 2.9 GB)",)
\t$(BIN)/python -m pip install -q -e ".[local,lab,demo]"
\t@touch $@
lab: setup
\t$(BIN)/python -m utils.lab exercises
\t$(BIN)/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) exercises
clean:
\trm -rf exercises/*/outputs .ipynb_checkpoints
"""


def build_student_distribution(root: Path | str = ROOT, out: Path | str | None = None) -> Path:
    """Write the student distribution (default dist/student/), check it leaks nothing, return its path."""
    root = Path(root).resolve()
    out = Path(out) if out else root / DIST
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    url = student_url(root)
    slug = url.split("github.com/", 1)[-1]
    rows = []
    for name in assignments(root):
        nb = Path(root, "exercises", name, f"{name}.ipynb")
        if not nb.exists():
            raise SystemExit(f"exercises/{name}/{name}.ipynb is missing: run the release first.")
        (out / "exercises" / name).mkdir(parents=True)
        shutil.copy(nb, out / "exercises" / name / nb.name)
        badge = f"https://colab.research.google.com/github/{slug}/blob/main/exercises/{name}/{name}.ipynb"
        rows.append(f"| {name[:2]} | [{_lesson_title(nb)}](exercises/{name}/{name}.ipynb) | "
                    f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({badge}) |")
    shutil.copytree(root / "utils", out / "utils", ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints"))
    template = Path(root, STUDENT_README).read_text(encoding="utf-8")
    (out / "README.md").write_text(template.replace("{url}", url).replace("{url_name}", url.rsplit("/", 1)[-1])
                                     .replace("{lessons}", "\n".join(rows)), encoding="utf-8")
    (out / "pyproject.toml").write_text(_student_pyproject(root, url), encoding="utf-8")
    (out / "Makefile").write_text(_student_makefile(), encoding="utf-8")
    (out / ".gitignore").write_text(".venv/\n*.egg-info/\n__pycache__/\n.ipynb_checkpoints/\noutputs/\n", encoding="utf-8")
    if Path(root, "environment.yml").exists():          # students' copy: no nbgrader (its instructor UI in JupyterLab)
        env = Path(root, "environment.yml").read_text(encoding="utf-8")
        (out / "environment.yml").write_text(re.sub(r"(?m)^\s*- nbgrader==.*\n", "", env), encoding="utf-8")
    problems = distribution_leaks(out, root)
    if problems:
        raise SystemExit("the student distribution leaks instructor material:\n  " + "\n  ".join(problems[:10]))
    return out


def _instructor_lines(root: Path) -> tuple[set[str], set[str]]:
    """(solution lines, hidden-test lines) of every lesson, long enough to be specific."""
    solution, hidden = set(), set()
    for name in assignments(root):
        for cell in json.loads(Path(root, "solutions", name, f"{name}.ipynb").read_text(encoding="utf-8"))["cells"]:
            src = "".join(cell["source"])
            for kind, block in re.findall(r"### BEGIN (SOLUTION|HIDDEN TESTS)\n(.*?)### END", src, flags=re.S):
                lines = {ln.strip() for ln in block.splitlines() if len(ln.strip()) > 25}
                (solution if kind == "SOLUTION" else hidden).update(lines)
    return solution, hidden


def shipped_reference_lines(root: Path | str = ROOT) -> set[str]:
    """Solution lines that also appear, by design, in the utils package students get.

    utils holds reference implementations of some exercises because later lessons import them
    (see STYLE.md); graded tests switch them off (utils.checks.own_work) so that importing or
    wrapping them earns nothing, but their source is readable.
    """
    root = Path(root)
    solution, _ = _instructor_lines(root)
    shipped = "\n".join(p.read_text(encoding="utf-8") for p in Path(root, "utils").glob("*.py"))
    return {ln for ln in solution if ln in shipped}


def distribution_leaks(dist: Path | str, root: Path | str = ROOT) -> list[str]:
    """Everything in `dist` that must stay with the instructor, as 'file: what' (empty when clean).

    Every file is read as text, whatever its type (a notebook's JSON is also searched with its
    escapes undone): solution lines (except the shipped utils references), hidden-test lines,
    graded quiz keys (a grade_answer call, a graded explanation, the hash of any option of a
    graded question), and files that only the instructor has.
    """
    dist, root = Path(dist), Path(root)
    solution, hidden = _instructor_lines(root)
    needles = {ln: "a solution line" for ln in solution - shipped_reference_lines(root)}
    needles |= {ln: "a hidden-test line" for ln in hidden}
    needles |= {m: "a solution or hidden-test marker" for m in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS",
                                                                "END HIDDEN TESTS", "quiz.grade_answer(", "QUIZ_ANSWERS.update(")}
    for src in sorted(Path(root, "course", "quizzes").glob("*.yaml")):
        bank = quiz_authoring.read_source(src)
        salt_file = Path(root, "utils", "quizzes", f"{src.stem}.json")
        salt = json.loads(salt_file.read_text())["salt"] if salt_file.exists() else None
        for q in bank["questions"]:
            if not q.get("graded"):
                continue
            for letter, text in q["explain"].items():
                needles[" ".join(str(text).split())[:60]] = f"the explanation of graded {src.stem} {q['id']}"
                if salt:
                    needles[quiz.digest(salt, src.stem, q["id"], str(letter).lower())] = f"a hash of graded {src.stem} {q['id']}"
    problems = []
    for path in sorted(p for p in dist.rglob("*") if p.is_file()):
        rel = path.relative_to(dist).as_posix()
        if rel.startswith(("solutions/", "course/", "autograded/", "submitted/", "feedback/")) or path.suffix in (".yaml", ".yml") \
                and path.name != "environment.yml" or path.name in ("gradebook.db", "nbgrader_config.py"):
            problems.append(f"{rel}: an instructor file")
        raw = path.read_bytes().decode("utf-8", errors="ignore")
        texts = [raw]
        if path.suffix == ".ipynb":
            try:
                texts.append("\n".join("".join(c.get("source", "")) for c in json.loads(raw).get("cells", [])))
            except ValueError:
                pass
        for needle, what in needles.items():
            if any(needle in t for t in texts):
                problems.append(f"{rel}: {what}: {needle[:70]!r}")
    return problems


if __name__ == "__main__":
    commands = {"stamp": lambda: [print(f"stamped {p}") for p in stamp()], "release": release,
                "dist": lambda: print(f"built {build_student_distribution()}")}
    if len(sys.argv) != 2 or sys.argv[1] not in commands:
        sys.exit(f"usage: python -m course.tools.classroom {{{','.join(commands)}}}")
    commands[sys.argv[1]]()
