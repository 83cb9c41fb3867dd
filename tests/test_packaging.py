"""One set of pins, notebooks committed clean, the repository URL stamped everywhere."""

import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml

from course.tools import classroom as course

ROOT = Path(__file__).resolve().parents[1]


def _pins(requirements):
    out = {}
    for req in requirements:
        m = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s;#]+)\s*", req)
        if m:
            out[m.group(1).lower().replace("_", "-")] = m.group(2)
    return out


def test_pyproject_and_environment_yml_pin_the_same_versions():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    py = _pins(meta["dependencies"]) | _pins(meta["optional-dependencies"]["local"]) | _pins(meta["optional-dependencies"]["dev"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_list = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    conda = _pins(pip_list)
    assert py == conda, f"only in pyproject: {set(py.items()) - set(conda.items())}; only in environment.yml: {set(conda.items()) - set(py.items())}"
    assert py["torch"] == "2.13.0"
    assert "torch" not in _pins(meta["dependencies"]), "Colab must keep its own torch: pin it only in the local extra"


def test_installed_versions_are_the_pinned_ones():
    import importlib.metadata as md

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = _pins(meta["dependencies"]) | _pins(meta["optional-dependencies"]["local"])
    for name, version in pins.items():
        installed = md.version(name)
        assert installed.split("+")[0] == version, f"{name}: installed {installed}, pinned {version} (run make setup)"


def _notebooks(folder):
    return sorted((ROOT / folder).glob("*/*.ipynb"))


def test_notebooks_are_committed_without_outputs():
    for path in _notebooks("solutions") + _notebooks("exercises"):
        nb = json.loads(path.read_text())
        dirty = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))]
        assert not dirty, f"{path.relative_to(ROOT)}: cells {dirty} carry outputs"


def test_every_lesson_is_released_and_follows_the_shape():
    solutions = [p.parent.name for p in _notebooks("solutions")]
    assert solutions == [p.parent.name for p in _notebooks("exercises")]
    for path in _notebooks("solutions"):
        nb = json.loads(path.read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert code[0]["metadata"]["nbgrader"]["grade_id"] == "setup" and code[0]["metadata"]["nbgrader"]["locked"]
        assert "parameters" in code[1]["metadata"].get("tags", []), "the second code cell is papermill's parameters cell"
        text = "".join("".join(c["source"]) for c in nb["cells"])
        ids = [c["metadata"]["nbgrader"]["grade_id"] for c in nb["cells"] if "nbgrader" in c["metadata"]]
        assert len(ids) == len(set(ids)), "grade_id must be unique within a notebook"
        assert "/content/" not in text and '.to("cuda")' not in text and "login(token" not in text


SECTIONS = ("Goal", "Theory", "Worked example", "Exercises", "Quiz", "Summary")


def section_order_problem(nb: dict) -> str | None:
    """None when the markdown headings naming the six sections come in the fixed order, else why not.

    Only headings (lines starting with #) count, and any other headings may sit between them, so
    a lesson written later passes as soon as its headings follow the same order.
    """
    headings = [ln.lstrip("#").strip() for c in nb["cells"] if c["cell_type"] == "markdown"
                for ln in "".join(c["source"]).splitlines() if ln.startswith("#")]
    named = [(h, i) for h in headings for i, word in enumerate(SECTIONS) if word.lower() in h.lower()]
    for word_index, word in enumerate(SECTIONS):
        if word_index not in {i for _, i in named}:
            return f"no heading names its {word!r} section (headings: {headings})"
    for (h1, i1), (h2, i2) in zip(named, named[1:]):
        if i2 < i1:
            return f"{h2!r} ({SECTIONS[i2]}) comes after {h1!r} ({SECTIONS[i1]}); the order is {', '.join(SECTIONS)}"
    return None


@pytest.mark.parametrize("path", _notebooks("solutions"), ids=lambda p: p.parent.name)
def test_sections_come_in_the_fixed_order(path):
    problem = section_order_problem(json.loads(path.read_text()))
    assert problem is None, f"{path.name}: {problem}"


def test_the_section_check_can_fail():
    def nb(*headings):
        return {"cells": [{"cell_type": "markdown", "source": f"## {h}\ntext"} for h in headings]}

    assert section_order_problem(nb("Goal", "Setup", "1. Theory", "2. Worked example", "3. Exercises", "4. Quiz", "5. Summary")) is None
    assert "'Worked example'" in section_order_problem(nb("Goal", "Theory", "Exercises", "Quiz", "Summary"))
    assert "comes after" in section_order_problem(nb("Goal", "Theory", "Worked example", "Exercises", "More theory", "Quiz", "Summary"))


def test_student_url_is_stamped_in_every_notebook():
    """Colab installs from and opens the student distribution; the README clones the course source."""
    url = course.student_url()
    slug = url.split("github.com/", 1)[1]
    for path in _notebooks("solutions") + _notebooks("exercises"):
        text = path.read_text()
        assert f'COURSE_REPO = \\"{url}\\"' in text, f"{path.name}: run make release to stamp {url}"
        badge = f"colab.research.google.com/github/{slug}/blob/main/exercises/{path.parent.name}/{path.name}"
        assert badge in text, f"{path.name}: its Colab badge does not point at its exercise notebook"
    readme = (ROOT / "README.md").read_text()
    assert f"git clone {course.repository_url()}" in readme and f"colab.research.google.com/github/{slug}/blob/main/exercises/" in readme


def test_student_url_falls_back_to_the_repository(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project.urls]\nRepository = "https://github.com/a/b/"\n')
    assert course.student_url(tmp_path) == "https://github.com/a/b"
    (tmp_path / "pyproject.toml").write_text('[project.urls]\nRepository = "https://github.com/a/b"\n'
                                             'Student-distribution = "https://github.com/a/b-student"\n')
    assert course.student_url(tmp_path) == "https://github.com/a/b-student"


def test_stamp_rewrites_an_old_url(tmp_path):
    (tmp_path / "solutions" / "01_x").mkdir(parents=True)
    (tmp_path / "pyproject.toml").write_text('[project.urls]\nRepository = "https://github.com/new-org/new-repo"\n')
    cell = 'COURSE_REPO = "https://github.com/old/old"  # stamped by `make release`\n'
    badge = "[![Open In Colab](x.svg)](https://colab.research.google.com/github/old/old/blob/main/exercises/01_x/01_x.ipynb)"
    nb = tmp_path / "solutions" / "01_x" / "01_x.ipynb"
    nb.write_text(json.dumps({"cells": [{"source": [cell, badge]}]}, indent=1))
    assert course.stamp(tmp_path) == [nb]
    text = nb.read_text()
    assert "new-org/new-repo" in text and "old/old" not in text
    assert course.stamp(tmp_path) == []                                   # idempotent


def test_stamp_points_colab_at_the_student_distribution(tmp_path):
    (tmp_path / "solutions" / "01_x").mkdir(parents=True)
    (tmp_path / "pyproject.toml").write_text('[project.urls]\nRepository = "https://github.com/org/src"\n'
                                             'Student-distribution = "https://github.com/org/class"\n')
    (tmp_path / "README.md").write_text("git clone https://github.com/old/old && cd old\n"
                                        "(https://colab.research.google.com/github/old/old/blob/main/exercises/01_x/01_x.ipynb)\n")
    nb = tmp_path / "solutions" / "01_x" / "01_x.ipynb"
    nb.write_text(json.dumps({"cells": [{"source": ['COURSE_REPO = "https://github.com/old/old"\n']}]}, indent=1))
    course.stamp(tmp_path)
    assert 'COURSE_REPO = \\"https://github.com/org/class\\"' in nb.read_text()
    readme = (tmp_path / "README.md").read_text()
    assert "git clone https://github.com/org/src " in readme and "github/org/class/blob/main/exercises/01_x" in readme


def test_papermill_sees_literal_parameters():
    """The parameters cell has literal defaults, so `papermill -p PROFILE full` works without parse warnings."""
    import papermill

    for path in _notebooks("solutions"):
        params = papermill.inspect_notebook(str(path))
        assert params.get("PROFILE", {}).get("default") == "None", f"{path.name}: parameters {params}"
