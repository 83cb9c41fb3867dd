"""The layout of issue 16: utils/ is what notebooks import, course/tools/ the instructor's and maintainer's kit.

Read from the source with ast (nothing is imported to find the imports):
- no import circle among utils and course.tools modules, counting imports inside functions too;
- an import sits inside a function only when it keeps a light module light: a module that does not
  load torch (or transformers, peft, trl, bitsandbytes, datasets) when imported may defer a module
  that does; every other utils / course import is at the top of its module;
- utils never imports the instructor's kit, nor nbgrader, yaml, pytest or the test-only tokenizer
  packages; the light modules really import without torch (one subprocess).
"""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY_LIBS = {"torch", "transformers", "peft", "trl", "bitsandbytes", "datasets", "accelerate"}
INSTRUCTOR_ONLY = {"nbgrader", "yaml", "pytest", "llama_models", "tiktoken", "playwright", "course", "jupytext", "papermill"}


def module_files() -> dict[str, Path]:
    files = sorted(ROOT.glob("utils/*.py")) + sorted(ROOT.glob("course/tools/*.py"))
    return {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p for p in files}


def imports(path: Path) -> list[tuple[str, bool, int]]:
    """(imported module, at the top of the module?, line) for every import statement in `path`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(n) for n in tree.body}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, id(node) in top, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.append((node.module, id(node) in top, node.lineno))
            out += [(f"{node.module}.{a.name}", id(node) in top, node.lineno) for a in node.names]
    return out


def graph() -> dict[str, dict[str, tuple[bool, int]]]:
    """module -> {course module it imports: (at top?, line)}; `from utils import x` counts as utils.x."""
    mods = module_files()
    edges: dict[str, dict[str, tuple[bool, int]]] = {m: {} for m in mods}
    for name, path in mods.items():
        for target, at_top, line in imports(path):
            if target in mods and target not in (name, "utils", "course.tools"):
                seen = edges[name].get(target)
                edges[name][target] = (at_top or bool(seen and seen[0]), line)
    return edges


def heavy_modules(edges) -> set[str]:
    """Modules whose import loads a heavy library: directly at their top, or through a heavy course module."""
    mods = module_files()
    heavy = {m for m, p in mods.items() if any(t.split(".")[0] in HEAVY_LIBS and top for t, top, _ in imports(p))}
    while True:
        more = {m for m in mods if m not in heavy and any(t in heavy and top for t, (top, _) in edges[m].items())}
        if not more:
            return heavy
        heavy |= more


def find_cycle(edges) -> list[str] | None:
    state: dict[str, int] = {}

    def visit(node, path):
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt, path + [nxt])):
                return found
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (found := visit(start, [start])):
            return found
    return None


def test_no_import_circle_in_utils_or_the_course_tools():
    cycle = find_cycle(graph())
    assert cycle is None, f"import circle: {' -> '.join(cycle)} (move the shared part into a module both can import)"


def test_the_cycle_finder_finds_a_circle():
    assert find_cycle({"a": {"b": (True, 1)}, "b": {"c": (False, 2)}, "c": {"a": (True, 3)}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b": (True, 1)}, "b": {}}) is None


def test_imports_inside_functions_only_keep_light_modules_light():
    edges = graph()
    heavy = heavy_modules(edges)
    wrong = [f"{module_files()[m].relative_to(ROOT)}:{line} imports {t} inside a function"
             for m, targets in edges.items() for t, (top, line) in targets.items()
             if not top and (m in heavy or t not in heavy)]
    assert not wrong, ("move these imports to the top of their module (only a module that imports without torch may "
                       "defer one that loads it):\n  " + "\n  ".join(wrong))


def test_utils_never_imports_the_instructor_kit_or_its_tools():
    wrong = [f"{p.relative_to(ROOT)}:{line} imports {t}" for m, p in module_files().items() if m.startswith("utils")
             for t, _, line in imports(p) if t.split(".")[0] in INSTRUCTOR_ONLY]
    assert not wrong, "utils/ ships to students, who have none of these:\n  " + "\n  ".join(wrong)


def test_light_modules_import_without_torch():
    edges = graph()
    light = sorted(m for m in set(module_files()) - heavy_modules(edges) if m.startswith("utils"))
    assert {"utils.config", "utils.setup_check", "utils.quiz", "utils.results"} <= set(light)
    code = f"import sys\nfor m in {light!r}: __import__(m)\nprint(sorted(set(sys.modules) & set({sorted(HEAVY_LIBS)!r})))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]", f"importing the light modules {light} loaded {out.stdout.strip()}"
