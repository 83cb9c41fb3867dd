"""The student distribution (dist/student/, built by `make release`): everything a student needs,
nothing an instructor must keep: no solution line, hidden-test line or graded quiz key, in any file."""

import json
import os
import re
from pathlib import Path

import pytest
import yaml

from course.tools import classroom as course
from utils import quiz

ROOT = Path(__file__).resolve().parents[1]
LESSONS = course.assignments(ROOT)


def _blocks(kind: str) -> set[str]:
    """Lines of every `### BEGIN <kind>` region of the solution notebooks, long enough to be specific."""
    lines = set()
    for name in LESSONS:
        for cell in json.loads((ROOT / "solutions" / name / f"{name}.ipynb").read_text())["cells"]:
            for block in re.findall(rf"### BEGIN {kind}\n(.*?)### END", "".join(cell["source"]), flags=re.S):
                lines |= {ln.strip() for ln in block.splitlines() if len(ln.strip()) > 25}
    return lines


def _graded():
    for path in sorted((ROOT / "course" / "quizzes").glob("*.yaml")):
        bank = yaml.safe_load(path.read_text())
        for q in bank["questions"]:
            if q.get("graded"):
                yield path.stem, q


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist") / "student"
    assert course.build_student_distribution(ROOT, out) == out
    texts = {}
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        raw = path.read_bytes().decode("utf-8", errors="ignore")      # every file, whatever its type
        if path.suffix == ".ipynb":                                   # and a notebook's cells with escapes undone
            raw += "\n" + "\n".join("".join(c["source"]) for c in json.loads(raw)["cells"])
        texts[path.relative_to(out).as_posix()] = raw
    return out, texts


def test_it_holds_what_a_student_needs(dist):
    out, texts = dist
    for name in LESSONS:
        assert f"exercises/{name}/{name}.ipynb" in texts
        assert f"utils/quizzes/{name}.json" in texts
    for needed in ("README.md", "pyproject.toml", "Makefile", "utils/__init__.py", "utils/quiz.py", "utils/checks.py"):
        assert needed in texts, needed
    assert not any(p.startswith(("solutions/", "course/")) or p.endswith((".yaml", "course.py", "quiz_authoring.py")) for p in texts)
    url = course.student_url(ROOT)
    slug = url.split("github.com/", 1)[1]
    for name in LESSONS:
        assert f"colab.research.google.com/github/{slug}/blob/main/exercises/{name}/{name}.ipynb" in texts["README.md"]
        assert f'COURSE_REPO = "{url}"' in texts[f"exercises/{name}/{name}.ipynb"]
    assert f'Repository = "{url}"' in texts["pyproject.toml"] and f"git clone {url}" in texts["README.md"]
    if url != course.repository_url(ROOT):      # a graded class: nothing points students at the source
        source = re.escape(course.repository_url(ROOT)) + r"(?![\w-])"
        assert not [p for p, t in texts.items() if re.search(source, t)]
    assert out.joinpath("exercises").is_dir() and "{lessons}" not in texts["README.md"]


def test_no_solution_or_hidden_test_line_anywhere(dist):
    _, texts = dist
    shipped = course.shipped_reference_lines(ROOT)       # utils references later lessons import, by design
    hidden = _blocks("HIDDEN TESTS")
    assert hidden and not hidden & shipped, "a hidden-test line must never be part of the shipped utils"
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        assert not [p for p, t in texts.items() if marker in t], marker
    for line in (_blocks("SOLUTION") - shipped) | hidden:
        leaked = [p for p, t in texts.items() if line in t]
        assert not leaked, f"{line!r} appears in {leaked}"


def test_no_graded_key_anywhere(dist):
    _, texts = dist
    everything = "\n".join(texts.values())
    assert "quiz.grade_answer(" not in everything and "QUIZ_ANSWERS.update" not in everything
    count = 0
    for lesson, q in _graded():
        count += 1
        salt = json.loads(texts[f"utils/quizzes/{lesson}.json"])["salt"]
        shipped = next(s for s in json.loads(texts[f"utils/quizzes/{lesson}.json"])["questions"] if s["id"] == q["id"])
        assert set(shipped) == {"id", "text", "options", "graded"}, f"{lesson} {q['id']} ships more than its text"
        for letter, text in q["explain"].items():
            assert quiz.digest(salt, lesson, q["id"], letter) not in everything, f"{lesson} {q['id']}: a hash"
            assert " ".join(str(text).split())[:50] not in everything, f"{lesson} {q['id']}: an explanation"
    assert count >= 3 * 7


def test_the_leak_check_finds_what_is_planted(dist, tmp_path):
    """The check that `make release` runs can fail: plant a hidden-test line, a graded hash, an instructor file."""
    out, _ = dist
    assert course.distribution_leaks(out, ROOT) == []
    lesson, q = next(_graded())
    salt = quiz.load_bank(lesson)["salt"]
    planted = {"notes.txt": sorted(_blocks("HIDDEN TESTS"))[0],
               "utils/cache.bin": quiz.digest(salt, lesson, q["id"], str(q["answer"])),
               "course/quizzes/x.yaml": "lesson: x"}
    for rel, text in planted.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(text)
    problems = course.distribution_leaks(out, ROOT)
    for rel in planted:
        assert any(p.startswith(rel + ":") for p in problems), (rel, problems)
    for rel in planted:
        (out / rel).unlink()


def test_students_get_jupyterlab_without_nbgrader(dist):
    """The student install has no nbgrader: its JupyterLab extension shows students the instructor's
    Nbgrader menu, Validate button and Create Assignment sidebar (make test-browser looks at the page)."""
    out, texts = dist
    import tomllib

    extras = tomllib.loads(texts["pyproject.toml"])["project"]["optional-dependencies"]
    named = re.findall(r'pip install -q -e "\.\[([^\]]*)\]"', texts["Makefile"])
    assert named == ["local,lab,demo"], named
    installed = [r.split("==")[0].lower() for e in named[0].split(",") for r in extras[e]]
    assert {"jupyterlab", "ipywidgets", "gradio"} <= set(installed) and "nbgrader" not in installed
    dev = {r.split("==")[0]: r for r in extras["dev"]}
    assert all(dev[r.split("==")[0]] == r for r in extras["lab"]), "lab pins must be dev's pins"
    assert "nbgrader" not in texts["environment.yml"] and "jupyterlab==" in texts["environment.yml"]
    # make lab writes this kernel's metadata into the lessons before JupyterLab opens them (utils.lab)
    recipe = re.search(r"(?m)^lab:.*\n((?:\t.*\n)+)", texts["Makefile"]).group(1).split("\n")
    assert recipe[0].strip() == "$(BIN)/python -m utils.lab exercises" and "jupyter lab" in recipe[1]
    assert "utils/lab.py" in texts


def test_lab_stamp_writes_what_the_kernel_reports(tmp_path):
    """utils.lab's metadata equals a real ipykernel's kernel_info reply, which JupyterLab writes on open."""
    import nbformat
    from jupyter_client.manager import start_new_kernel

    from utils import lab

    km, kc = start_new_kernel(kernel_name="python3")
    try:
        reported = kc.kernel_info(reply=True, timeout=60)["content"]["language_info"]
        spec = km.kernel_spec
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    meta = lab.kernel_metadata()
    assert meta["language_info"] == reported
    assert meta["kernelspec"] == {"name": "python3", "display_name": spec.display_name, "language": spec.language}
    src = ROOT / "exercises" / LESSONS[0] / f"{LESSONS[0]}.ipynb"
    nb_path = tmp_path / "exercises" / src.name
    nb_path.parent.mkdir()
    nb_path.write_text(src.read_text())
    assert lab.stamp(tmp_path / "exercises") == [nb_path] and lab.stamp(tmp_path / "exercises") == []
    before, after = nbformat.read(src, as_version=4), nbformat.read(nb_path, as_version=4)
    assert after.metadata["language_info"] == reported and after.cells == before.cells


@pytest.mark.parametrize("folder", ["solutions", "exercises"])
def test_every_cell_has_an_id_nothing_to_rewrite_on_open(folder):
    """nbformat 4.5 with a unique, valid id on every cell: a cell without one is given one when JupyterLab
    (or nbformat) opens the notebook, which marks a student's lesson modified before anything ran."""
    import nbformat
    from nbformat.validator import normalize

    paths = sorted((ROOT / folder).glob("[0-9][0-9]_*/[0-9][0-9]_*.ipynb"))
    assert paths
    for path in paths:
        nb = json.loads(path.read_text())
        ids = [c.get("id") for c in nb["cells"]]
        assert (nb["nbformat"], nb["nbformat_minor"]) >= (4, 5), f"{path}: nbformat {nb['nbformat']}.{nb['nbformat_minor']}"
        assert all(ids) and len(set(ids)) == len(ids), f"{path}: cells without an id, or the same id twice"
        assert normalize(nb)[0] == 0, f"{path}: nbformat would rewrite it (run nbformat's normalize, then make release)"
        nbformat.validate(nbformat.reads(json.dumps(nb), as_version=4))


# --- issue 16: utils ships whole, holds no instructor tooling, and runs a lesson on its own ------------------------

def test_utils_ships_whole_and_imports_no_instructor_tool(dist):
    from test_layout import INSTRUCTOR_ONLY, imports

    out, _ = dist
    shipped = {p.relative_to(out / "utils").as_posix() for p in (out / "utils").rglob("*") if p.is_file()}
    source = {p.relative_to(ROOT / "utils").as_posix() for p in (ROOT / "utils").rglob("*")
              if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}
    assert shipped == source, f"utils/ ships whole: missing {sorted(source - shipped)}, extra {sorted(shipped - source)}"
    wrong = [f"utils/{p.name}:{line} imports {t}" for p in sorted((out / "utils").glob("*.py"))
             for t, _, line in imports(p) if t.split(".")[0] in INSTRUCTOR_ONLY]
    assert not wrong, wrong
    tooling = ("course", "classroom", "quiz_authoring", "bench", "bench_1b", "gpu_check", "colab_check", "llama_tokenizer")
    assert not [n for n in tooling if (out / "utils" / f"{n}.py").exists()]


def _make_n(folder: Path, path: str, *args: str) -> str:
    import subprocess

    proc = subprocess.run(["make", "-n", "setup", *args], cwd=folder, capture_output=True, text=True,
                          env={**os.environ, "PATH": path}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_the_student_makefile_takes_cpu_torch_where_linux_has_no_nvidia_gpu(dist, tmp_path):
    """`make lab` in the student copy: PyTorch's CPU wheel on Linux without nvidia-smi, PyPI's build with one or
    when asked (TORCH=pypi); the CPU index unreachable falls back to PyPI with one sentence."""
    import platform
    import shutil

    out, texts = dist
    if platform.system() != "Linux":
        pytest.skip("the CPU-wheel default applies to Linux only (PyPI's macOS and Windows wheels are CPU builds)")
    folder = tmp_path / "student"
    folder.mkdir()
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(out / name, folder / name)
    base = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep)
                           if not Path(p, "nvidia-smi").exists())
    cpu = "--index-url https://download.pytorch.org/whl/cpu"
    assert cpu in _make_n(folder, base), "no NVIDIA GPU: the CPU wheel"
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "nvidia-smi").write_text("#!/bin/sh\nexit 0\n")
    (fake / "nvidia-smi").chmod(0o755)
    assert cpu not in _make_n(folder, f"{fake}{os.pathsep}{base}"), "an NVIDIA GPU: PyPI's CUDA build"
    assert cpu not in _make_n(folder, base, "TORCH=pypi") and cpu in _make_n(folder, f"{fake}{os.pathsep}{base}", "TORCH=cpu")
    assert "could not reach" in texts["Makefile"] and "TORCH=cpu" in texts["README.md"]


@pytest.mark.slow
def test_a_lesson_runs_from_the_student_distribution_alone(dist, tmp_path, monkeypatch):
    """Lesson 01's exercise version, with the solution cells filled in as a student would, executes in a copy of
    the distribution whose utils is the one imported (not this repository's)."""
    import shutil

    import nbformat
    from nbclient import NotebookClient

    out, _ = dist
    copy = tmp_path / "student"
    shutil.copytree(out, copy)
    name = LESSONS[0]
    solved = {c.metadata["nbgrader"]["grade_id"]: c.source for c in nbformat.read(ROOT / "solutions" / name / f"{name}.ipynb", 4).cells
              if c.metadata.get("nbgrader", {}).get("solution")}
    path = copy / "exercises" / name / f"{name}.ipynb"
    nb = nbformat.read(path, 4)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in solved:
            cell.source = solved[gid]
    nb.cells.append(nbformat.v4.new_code_cell("import utils\nprint('UTILS FROM', utils.__file__)"))
    monkeypatch.setenv("PYTHONPATH", str(copy))            # the kernel inherits it: the copy's utils comes first
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    printed = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
    assert f"UTILS FROM {copy / 'utils' / '__init__.py'}" in printed, printed
