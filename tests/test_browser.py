"""What a person clicks, clicked in a real browser: `make test-browser` (not part of `make test`).

Playwright for Python drives Debian's Chromium (``apt-get install chromium``, which the Makefile
target does when it is missing; no Playwright browser download). Two real servers:

- JupyterLab on a copy of the student distribution (``make release`` builds ``dist/student``),
  with a token on a free port: lesson 04's exercise opens unmodified, its setup, parameters,
  imports and quiz cells run, a click on a practice option answers back, and no nbgrader
  instructor UI is shown.
- The demo app, started as ``make demo`` starts it: a sentence typed, the button pressed, a label
  and its probability bars shown.

Screenshots go to ``browser-screenshots/`` (ignored by git): look at them.
"""

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not os.environ.get("COURSE_BROWSER_TESTS"),
                                reason="browser tests run with make test-browser (COURSE_BROWSER_TESTS=1)")

ROOT = Path(__file__).resolve().parents[1]
STUDENT = ROOT / "dist" / "student"
SHOTS = ROOT / "browser-screenshots"
CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
LESSON = "exercises/04_lora_sentiment/04_lora_sentiment.ipynb"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, proc: subprocess.Popen, seconds: float, log: Path) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"no answer from {url} after {seconds:.0f} s:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: make test-browser installs Debian's (apt-get install chromium)")
    SHOTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def _student_packages() -> set[str]:
    """What the student distribution's `make setup` installs: its pyproject's dependencies and the extras its Makefile names."""
    meta = tomllib.loads((STUDENT / "pyproject.toml").read_text())["project"]
    extras = set()
    for group in re.findall(r'-e\s+"?\.\[([^\]]*)\]', (STUDENT / "Makefile").read_text()):
        extras |= {e.strip() for e in group.split(",")}
    reqs = list(meta["dependencies"]) + [r for e in extras for r in meta.get("optional-dependencies", {}).get(e, [])]
    return {re.split(r"[\s=<>!~;\[]", r.strip(), maxsplit=1)[0].lower() for r in reqs}


@pytest.fixture(scope="module")
def student_lab(tmp_path_factory):
    """JupyterLab on a copy of dist/student, started as its `make lab` starts it, on a free port with a token."""
    if not (STUDENT / LESSON).exists():
        pytest.fail("no student distribution: run make release first (it builds dist/student)")
    home = tmp_path_factory.mktemp("lab")
    course = home / "student"
    shutil.copytree(STUDENT, course)
    config, settings = home / "config", home / "settings" / "@jupyterlab" / "notebook-extension"
    (config / "labconfig").mkdir(parents=True)
    settings.mkdir(parents=True)
    # every cell in the page, not only the visible ones (JupyterLab windows long notebooks)
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    disabled = {"@jupyterlab/apputils-extension:announcements": True}     # no "news?" toast (offline)
    if "nbgrader" not in _student_packages():
        # The shared test venv has nbgrader (the instructor needs it); the student install does not,
        # so its JupyterLab extension is switched off here as if it were not installed.
        disabled["@jupyter/nbgrader"] = True
    (config / "labconfig" / "page_config.json").write_text(json.dumps({"disabledExtensions": disabled}))
    # what the student Makefile's `make lab` runs before JupyterLab (utils.lab: this kernel's notebook metadata)
    recipe = re.search(r"(?m)^lab:.*\n((?:\t.*\n)+)", (course / "Makefile").read_text()).group(1).splitlines()
    before = [line.strip() for line in recipe if "jupyter lab" not in line]
    assert recipe[-1].strip().startswith("$(BIN)/jupyter lab") and before, recipe
    for line in before:
        assert line.startswith("$(BIN)/python "), line
        subprocess.run([sys.executable, *line.split()[1:]], cwd=course, check=True)
    token, port = secrets.token_hex(16), _free_port()
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(config), "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
           "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "COURSE_PROFILE": "smoke", "OMP_NUM_THREADS": "1",
           # kernels import the distribution's utils (as a student's `pip install -e .` there does), not this repository's
           "PYTHONPATH": os.pathsep.join(filter(None, [str(course), os.environ.get("PYTHONPATH")]))}
    log = home / "lab.log"
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", f"--port={port}",
           "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={course}"]
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=course, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_http(f"http://127.0.0.1:{port}/api/status?token={token}", proc, 90, log)
        yield {"url": f"http://127.0.0.1:{port}", "token": token, "course": course}
    finally:
        _stop(proc)


def _code_cells(path: Path) -> dict[str, int]:
    """Indices (among all cells) of the cells the test runs, found by their content."""
    cells = json.loads(path.read_text())["cells"]
    found = {}
    for i, c in enumerate(cells):
        src = "".join(c["source"])
        if c["cell_type"] != "code":
            continue
        found.setdefault("setup", i)
        if "parameters" in c["metadata"].get("tags", []):
            found["parameters"] = i
        if "config.get_profile(" in src and "imports" not in found:
            found["imports"] = i
        if "quiz.show(" in src:
            found["quiz"] = i
    assert set(found) == {"setup", "parameters", "imports", "quiz"}, found
    return found


def _run_cell(page, index: int, timeout_s: float = 120) -> None:
    cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
    cell.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Shift+Enter")
    # the prompt shows [n] (not [*] or [ ]) once the kernel has run it
    cell.locator(".jp-InputPrompt", has_text=re.compile(r"\[\d+\]")).wait_for(timeout=timeout_s * 1000)
    errors = cell.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    assert "Traceback" not in (errors.all_inner_texts() or [""])[0], errors.all_inner_texts()


def test_student_lab_quiz_answers_back(browser, student_lab):
    cells = _code_cells(student_lab["course"] / LESSON)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{student_lab['url']}/lab/tree/{LESSON}?token={student_lab['token']}")
    tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="04_lora_sentiment.ipynb")
    tab.wait_for(timeout=60_000)
    page.locator(".jp-Notebook .jp-Cell").nth(cells["quiz"]).wait_for(timeout=60_000)
    page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for(timeout=90_000)
    page.wait_for_timeout(2000)                  # let any post-load rewrite of the notebook model happen
    assert "jp-mod-dirty" not in (tab.get_attribute("class") or ""), \
        "the notebook is marked modified before anything ran (cells without ids, or another kernelspec / language_info)"

    for name in ("setup", "parameters", "imports", "quiz"):
        _run_cell(page, cells[name])
    quiz = page.locator(".jp-Notebook .jp-Cell").nth(cells["quiz"])
    radios = quiz.locator(".widget-radio-box")
    radios.first.wait_for(timeout=30_000)
    assert quiz.locator(".widget-html", has_text=re.compile(r"^q1\.")).count() == 1, "q1 is labelled once"
    assert "--- Practice questions" not in quiz.inner_text(), "the plain-text copy is shown beside the widgets"
    radios.first.locator("label").nth(1).click()                       # q1, option b
    answer = quiz.locator(".widget-output", has_text=re.compile(r"q1: b\) (correct|not quite)\."))
    answer.wait_for(timeout=30_000)
    quiz.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "lab_quiz.png"))
    assert answer.count() == 1


def test_student_lab_shows_no_nbgrader_instructor_ui(browser, student_lab):
    packages = _student_packages()
    assert "nbgrader" not in packages, ("the student distribution's make setup installs nbgrader, whose JupyterLab "
                                        "extension shows students the instructor's menu and Create Assignment sidebar")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{student_lab['url']}/lab/tree/{LESSON}?token={student_lab['token']}")
    page.locator(".lm-MenuBar").wait_for(timeout=60_000)
    toolbar = page.locator(".jp-NotebookPanel-toolbar")
    toolbar.wait_for(timeout=60_000)
    page.wait_for_timeout(3000)
    page.screenshot(path=str(SHOTS / "lab_student_ui.png"))
    assert "Nbgrader" not in page.locator(".lm-MenuBar").inner_text(), "the nbgrader menu is shown"
    assert "Validate" not in toolbar.inner_text(), "nbgrader's Validate button is in the notebook toolbar"
    assert page.get_by_text("Create Assignment").count() == 0, "the Create Assignment sidebar is shown"
    assert page.get_by_text("Formgrader").count() == 0


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory):
    """The demo as `make demo` starts it (python -m utils.demo), sentiment tab only, on a free port."""
    port, log = _free_port(), tmp_path_factory.mktemp("demo") / "demo.log"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "utils.demo", "--only", "sentiment", "--port", str(port)],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_http(f"http://127.0.0.1:{port}/", proc, 180, log)
        yield f"http://127.0.0.1:{port}/"
    finally:
        _stop(proc)


def test_demo_in_the_browser(browser, demo_server):
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(demo_server)
    info = page.locator("#sentiment-info")
    info.wait_for(timeout=60_000)
    assert re.search(r"model .*tiny-llama.* adapter .* device .*cpu", info.inner_text()), info.inner_text()
    page.locator("#sentence textarea").fill("thầy giảng bài rất dễ hiểu .")
    page.locator("#classify").click()
    result = page.locator("#sentiment-label")
    result.locator("h2, .output-class").first.wait_for(timeout=60_000)
    headline = result.locator("h2, .output-class").first.inner_text().strip()
    assert headline in ("negative", "neutral", "positive"), headline
    bars = result.locator(".confidence-set")
    bars.first.wait_for(timeout=10_000)
    assert bars.count() == 3, "one bar per label"
    shown = result.inner_text()
    assert all(label in shown for label in ("negative", "neutral", "positive")) and "%" in shown, shown
    page.screenshot(path=str(SHOTS / "demo_sentiment.png"))

    page.locator("#sentence textarea").fill("   ")
    page.locator("#classify").click()
    page.get_by_text("The sentence is empty: give at least one word to classify.").first.wait_for(timeout=30_000)
    page.wait_for_timeout(500)                   # the toast slides in
    page.screenshot(path=str(SHOTS / "demo_refused.png"))
