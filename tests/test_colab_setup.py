"""The Colab side: the restart check after the setup cell's install, the setup cell itself, and colab-check's analysis."""

import importlib.metadata as md
import json
import re
import shutil
import types

import pytest

from course.tools import classroom as course, colab_check
from utils import setup_check


def _module(version):
    return types.SimpleNamespace(__version__=version)


def test_a_loaded_module_whose_package_changed_on_disk_is_stale():
    numpy_now = md.version("numpy")
    fake = {"numpy": _module("1.0.0"), "yaml": _module(md.version("PyYAML")), "numpy.linalg": _module("1.0.0"),
            "no_version": types.SimpleNamespace(), "torch": _module(md.version("torch").split("+")[0] + "+cu128")}
    stale = setup_check.stale_modules(fake)
    assert stale == [("numpy", "numpy", "1.0.0", numpy_now)], "only numpy changed (a local build label is not a change)"
    message = setup_check.restart_message(stale)
    assert "\n" not in message and message.endswith(".") and not re.search(r"\.\s+[A-Z]", message), "one sentence"
    assert "restart the runtime" in message and "run this cell again" in message
    assert f"numpy 1.0.0 -> {numpy_now}" in message


def test_nothing_changed_means_no_message_and_no_stop():
    fake = {"numpy": _module(md.version("numpy")), "pandas": _module(md.version("pandas"))}
    assert setup_check.stale_modules(fake) == [] and setup_check.restart_message([]) is None
    setup_check.stop_if_restart_needed(fake)                       # returns quietly
    with pytest.raises(SystemExit, match="restart the runtime"):
        setup_check.stop_if_restart_needed({"pandas": _module("2.2.3")})


def test_the_real_sys_modules_of_this_process_are_consistent():
    assert setup_check.stale_modules() == [], "this venv's loaded modules match their installed versions"


def test_stamping_writes_the_one_setup_cell_into_every_lesson(tmp_path, root):
    lesson = next(p for p in sorted(root.glob("solutions/*/*.ipynb")) if p.stem == p.parent.name)
    target = tmp_path / "solutions" / lesson.parent.name / lesson.name
    target.parent.mkdir(parents=True)
    shutil.copy(lesson, target)
    (tmp_path / "pyproject.toml").write_text('[project.urls]\nRepository = "https://github.com/new-org/new-repo"\n')
    before = json.loads(target.read_text())
    assert course.stamp(tmp_path) == [target]
    after = json.loads(target.read_text())
    setup = [c for c in after["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "setup"]
    assert len(setup) == 1 and "".join(setup[0]["source"]) == course.setup_cell_source("https://github.com/new-org/new-repo")
    others = lambda nb: [c for c in nb["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") != "setup"]
    badge_url = getattr(course, "student_url", course.repository_url)(root)   # where badges point
    old_slug = badge_url.split("github.com/", 1)[1]
    assert json.dumps(others(after)).replace("new-org/new-repo", old_slug) == json.dumps(others(before)), \
        "only the setup cell changes (and the badge's URL)"
    assert setup[0]["metadata"] == next(c for c in before["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == "setup")["metadata"]
    assert course.stamp(tmp_path) == []                             # idempotent
    code = "".join(setup[0]["source"])
    compile(code, "setup", "exec")
    assert 'COURSE_REPO = "https://github.com/new-org/new-repo"' in code and "peft-course[colab] @ git+" in code
    assert "setup_check.stop_if_restart_needed()" in code


def test_setup_cell_outside_colab_does_nothing_when_the_course_is_installed():
    namespace = {}
    exec(compile(course.setup_cell_source(course.repository_url()), "setup", "exec"), namespace)
    assert namespace["COURSE_REPO"] == course.repository_url()


def test_snapshot_holds_the_issue_12_versions(root):
    python, colab = colab_check.read_snapshot(root / "course" / "colab" / "colab-packages.txt")
    assert python == "3.13"
    expected = {"torch": "2.11.0+cu128", "transformers": "5.15.0", "datasets": "4.0.0", "pyarrow": "18.1.0",
                "numpy": "2.1.3", "pandas": "2.2.3", "huggingface-hub": "1.27.0", "peft": "0.20.0",
                "accelerate": "1.14.0", "scikit-learn": "1.6.1", "matplotlib": "3.10.0", "ipywidgets": "7.7.1"}
    assert {k: colab[k] for k in expected} == expected
    assert "trl" not in colab and "bitsandbytes" not in colab, "Colab has neither"


def test_a_bad_snapshot_line_is_one_clear_sentence(tmp_path):
    bad = tmp_path / "snap.txt"
    bad.write_text("python==3.13\ntorch==2.11.0\nnumpy>=2\n")
    with pytest.raises(ValueError, match=r"cannot read 'numpy>=2'; write one 'name==version' per line"):
        colab_check.read_snapshot(bad)


def _item(name, version, requires=()):
    return {"metadata": {"name": name, "version": version, "requires_dist": list(requires)}}


def test_analysis_flags_preloaded_changes_and_fails_on_torch():
    colab = {"torch": "2.11.0+cu128", "pyarrow": "18.1.0", "numpy": "2.1.3", "transformers": "5.15.0"}
    report = {"install": [_item("pyarrow", "26.0.1"), _item("numpy", "2.1.3"), _item("transformers", "5.24.0"),
                          _item("trl", "1.16.0")]}
    r = colab_check.analyse(report, colab)
    assert [c["name"] for c in r["changes"]] == ["pyarrow", "transformers"] and r["ok"]
    assert r["restart_needed_for"] == ["pyarrow"] and r["new"] == [{"name": "trl", "version": "1.16.0"}]
    r = colab_check.analyse({"install": [_item("torch", "2.13.0")]}, colab)
    assert not r["ok"] and r["torch_changes"][0]["to"] == "2.13.0"
    assert colab_check.analyse({"install": [_item("torch", "2.11.0")]}, colab)["ok"], "2.11.0 is Colab's 2.11.0+cu128"


def test_torch_own_libraries_are_told_apart():
    report = {"install": [_item("torch", "2.11.0", ["nvidia-cublas==13.1", "triton==3.6.0", "filelock"]),
                          _item("triton", "3.6.0", ["nvidia-nvjitlink"]), _item("nvidia-cublas", "13.1"),
                          _item("nvidia-nvjitlink", "13.0"), _item("datasets", "5.2.0", ["filelock"]), _item("filelock", "3.2")]}
    assert colab_check._only_needed_by_torch(report) == {"nvidia-cublas", "triton", "nvidia-nvjitlink"}


def test_specifiers_follow_markers_for_colabs_python():
    report = {"install": [_item("a", "1", ["b>=2; python_version >= '3.13'", "c<1; python_version < '3.12'",
                                          "d; extra == 'test'"])]}
    specs = colab_check.specifiers(report, ["a==1"], "3.13")
    assert specs == {"a": ["==1"], "b": [">=2"]}
    assert colab_check.satisfies("18.1.0", [">=21.0.0"]) is False and colab_check.satisfies("2.11.0+cu128", ["==2.11.0"])


def test_the_setup_cell_installs_the_colab_extra_that_pyproject_declares(root):
    import tomllib

    meta = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    assert "colab" in meta["optional-dependencies"]
    assert re.search(r"peft-course\[colab\] @ git\+", course.SETUP_CELL)
    assert colab_check.course_requirements(root)[-len(meta["optional-dependencies"]["colab"]):] == \
        meta["optional-dependencies"]["colab"]


def test_every_lesson_carries_the_one_setup_cell(root):
    """Edit course/tools/classroom.py SETUP_CELL, never a notebook's setup cell: `make release` writes it everywhere."""
    url = getattr(course, "student_url", course.repository_url)(root)
    for path in sorted(root.glob("solutions/*/*.ipynb")):
        nb = json.loads(path.read_text())
        setup = [c for c in nb["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "setup"]
        assert len(setup) == 1, f"{path.name}: one setup cell (grade_id 'setup')"
        assert "".join(setup[0]["source"]) == course.setup_cell_source(url), \
            f"{path.name}: its setup cell differs from course/tools/classroom.py SETUP_CELL; run make release"


def test_a_post_release_or_local_label_is_not_a_change():
    """certifi's module says 2026.10.19 while its distribution is 2026.10.19.post1: no restart for that."""
    import types

    mods = {"certifi": types.SimpleNamespace(__version__="2026.10.19"), "torch": types.SimpleNamespace(__version__="2.11.0+cu128")}
    mapping = {"certifi": ["certifi"], "torch": ["torch"]}
    versions = {"certifi": "2026.10.19.post1", "torch": "2.11.0"}
    assert setup_check.stale_modules(mods, mapping, version_of=versions.__getitem__) == []
    versions["certifi"] = "2026.11.1"
    assert setup_check.stale_modules(mods, mapping, version_of=versions.__getitem__)[0][:2] == ("certifi", "certifi")
