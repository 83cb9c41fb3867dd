"""Tamper report: code in a submission that reaches into the grader, found by reading it (AST), never by running it.

The hidden tests of a lesson run in the student's own kernel and call helpers that live there
(``checks.own_work``, ``quiz.grade_answer``): a cell that replaces them defeats the tests. This
module parses every cell a student can edit and lists, per cell, each line that

- writes an attribute of an imported module or of anything taken from ``utils``
  (``_c.own_work = ...``, ``utils.quiz.grade_answer = ...``, ``del checks.own_work``), or calls
  ``setattr``/``delattr``/``__setattr__`` on one; rebinds a name the notebook imported
  (``quiz = Fake()``, ``checks = ...``) or writes ``globals()``;
- touches ``sys.modules`` (or ``sys.meta_path``, ``sys.settrace``...), ``builtins``/``__builtins__``,
  function internals (``__code__``, ``__globals__``, ``__closure__``, ``__defaults__``), a module's
  ``__dict__`` / ``vars(module)``, ``importlib.reload``, dynamic imports (``__import__``,
  ``importlib.import_module``), the garbage collector's object graph (``gc.get_referrers``,
  ``gc.get_objects``), frames (``sys._getframe``, ``inspect.currentframe``/``stack``, ``f_back``,
  ``f_globals``, ``f_locals``), ``exec``/``eval``/``compile``/``marshal``, ``ctypes``, process
  control (``os._exit``, ``os.kill``, ``signal``), ``unittest.mock`` (``mock.patch("utils.checks...")``),
  ``setattr``/``exec``/``globals`` passed around as values (``f = setattr``, ``map(setattr, ...)``),
  or the IPython shell's internals (``get_ipython().user_ns``, ``.events``, ``%run``/``%load_ext``).

Aliases are resolved (``import utils.checks as _c``, ``from utils import quiz as q``, ``m = _q``,
``for m in (_q, _c)``), and the imports of the whole notebook count, so a cell that uses the
notebook's own ``checks`` without importing it is still caught. A normal solution is not flagged:
imports of torch, numpy or math, its own helpers and classes, attributes of its own objects
(``self.x = ...``, ``model.config.pad_token_id = ...``), ``setattr`` on a module of its own model,
``torch.manual_seed``, ``gc.collect()``, ``nn.Module`` subclasses, ``"google.colab" in sys.modules``
(tests/test_tamper.py walks every reference solution). Rebinding a name the notebook imported at top
level (``data = [...]`` where lesson 04 imported ``utils.data``) is listed even when harmless:
``prompts = SimpleNamespace(mask_prompt=mask_prompt)`` would defeat the own-work check, and the two
cannot be told apart statically.

What it cannot catch: this is static analysis of Python that can compute anything. Code that
builds a name from strings and reaches the grader through an object the analysis does not
follow (``getattr(getattr(x, "__cl" + "ass__"), ...)`` chains, containers of modules, a helper
written to a file and imported, ``open("utils/checks.py", "w")`` where the course is installed
editable) is not seen; a grader that runs outside the student's kernel is the real defence. A
cell that does not parse is reported as such (kind ``unparseable``) rather than guessed at.

Which cells: solution cells and the code cells nbgrader does not lock (a locked or graded cell is
restored from the gradebook at autograde, so its submitted text never runs). A cell whose metadata
claims 'locked' without a grade_id runs as written and is scanned; one with a grade_id the release
does not have also runs: pass `release=` (the exercises/ notebook) to trust only the release's
locked ids. The course's own locked setup cell reads ``sys.modules`` and the hidden tests pass
``globals()`` to ``checks.check_defined``: a call like that, straight into a ``utils`` function, is
not a finding.

API (what grading calls): ``scan_notebook(nb) -> {cell key: [Finding]}`` over the editable cells in
cell order (key: the nbgrader grade_id, else 'cell N'); ``tampered_cells(nb) -> [(index, key,
findings)]`` for those with findings; ``report_lines(findings) -> ['key line N: kind: text']``.
``python -m course.tools.tamper NB...`` prints them and exits 1 when anything is found.

Example:
    >>> scan_source("import utils.checks as _c\\n_c.own_work = None")
    [Finding(line=2, kind='module attribute write', text='_c.own_work = None')]
"""

from __future__ import annotations

import ast
import builtins
import json
from dataclasses import dataclass
from pathlib import Path

# --- notebooks ---------------------------------------------------------------------------------------


class NotebookError(ValueError):
    """A submission that cannot be read as a notebook."""


def load_notebook(nb) -> dict:
    """A notebook as a dict, from a path, a JSON string's file, an nbformat node or a dict."""
    if isinstance(nb, dict):
        return nb
    path = Path(nb)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NotebookError(f"{path} is not a readable notebook ({type(exc).__name__}: {exc}); "
                            "ask the student to submit the .ipynb file saved by Jupyter.") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise NotebookError(f"{path} is JSON but not a notebook (no list of 'cells'); "
                            "ask the student to submit the .ipynb file saved by Jupyter.")
    return data


def cell_source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def nbgrader_meta(cell) -> dict:
    return (cell.get("metadata") or {}).get("nbgrader") or {}


def cell_key(cell, index: int) -> str:
    """The name a report uses for a cell: its nbgrader grade_id, else 'cell N' (N: index in nb["cells"])."""
    return nbgrader_meta(cell).get("grade_id") or f"cell {index}"


def locked_ids(release) -> set[str]:
    """The grade_ids of the cells a released notebook locks (nbgrader restores them at autograde)."""
    nb = load_notebook(release)
    return {m["grade_id"] for m in map(nbgrader_meta, nb["cells"])
            if m.get("grade_id") and (m.get("locked") or m.get("grade")) and not m.get("solution")}


def is_editable(cell, locked: set[str] | None = None) -> bool:
    """A code cell whose submitted source is what runs: solution cells and cells nbgrader does not lock.

    nbgrader's autograde (OverwriteCells) restores a locked cell from the gradebook by its grade_id,
    so the submitted text of a locked or graded cell never runs. A cell that only *claims* to be
    locked does run: one without a grade_id is left alone by nbgrader, and so is one whose grade_id
    the release does not have (nbgrader drops it). So a 'locked' cell without a grade_id counts as
    editable, and with `locked` (the release's locked grade_ids, see `locked_ids`) only those ids do."""
    if cell.get("cell_type") != "code":
        return False
    meta = nbgrader_meta(cell)
    grade_id = meta.get("grade_id")
    if meta.get("solution") or not grade_id:
        return True
    if locked is not None:
        return grade_id not in locked
    return not (meta.get("locked") or meta.get("grade"))


_TRANSFORMER = None


def python_source(src: str) -> str:
    """Cell source as plain Python: IPython magics and shell escapes become the calls IPython makes."""
    global _TRANSFORMER
    if "%" not in src and "!" not in src:
        return src
    try:
        if _TRANSFORMER is None:
            from IPython.core.inputtransformer2 import TransformerManager
            _TRANSFORMER = TransformerManager()
        return _TRANSFORMER.transform_cell(src)
    except Exception:   # noqa: BLE001 - without IPython (or on odd input) parse what was written
        return src


def parse_cell(src: str) -> ast.Module:
    """ast.parse of a cell's source after IPython's transformation; SyntaxError as ast raises it."""
    return ast.parse(python_source(src))


# --- findings ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    line: int     # 1-based, in the cell's source
    kind: str     # one of KINDS
    text: str     # the source line, stripped

    def __str__(self) -> str:
        return f"line {self.line}: {self.kind}: {self.text}"


KINDS = (
    "module attribute write", "setattr on an import", "rebinds an imported name", "globals write",
    "sys.modules", "sys internals", "builtins", "function internals", "module __dict__", "importlib.reload",
    "dynamic import", "gc object graph", "frame inspection", "exec/eval/compile", "ctypes", "process control",
    "ipython internals", "mock patch", "builtin passed around", "unparseable",
)

# dotted names (after alias resolution) that are findings wherever they appear, longest match wins
FORBIDDEN = {
    "sys.modules": "sys.modules",
    "sys._getframe": "frame inspection", "sys._current_frames": "frame inspection",
    "sys.settrace": "sys internals", "sys.setprofile": "sys internals", "sys.meta_path": "sys internals",
    "sys.path_hooks": "sys internals", "sys.addaudithook": "sys internals", "sys.excepthook": "sys internals",
    "builtins": "builtins",
    "importlib.reload": "importlib.reload", "imp.reload": "importlib.reload",
    "importlib.import_module": "dynamic import", "importlib.__import__": "dynamic import",
    "importlib.util.module_from_spec": "dynamic import", "importlib.util.spec_from_file_location": "dynamic import",
    "gc.get_referrers": "gc object graph", "gc.get_referents": "gc object graph", "gc.get_objects": "gc object graph",
    "gc.garbage": "gc object graph", "gc.callbacks": "gc object graph",
    "inspect.currentframe": "frame inspection", "inspect.stack": "frame inspection", "inspect.trace": "frame inspection",
    "inspect.getouterframes": "frame inspection", "inspect.getinnerframes": "frame inspection",
    "traceback.walk_stack": "frame inspection",
    "ctypes": "ctypes", "_ctypes": "ctypes",
    "os._exit": "process control", "os.kill": "process control", "os.killpg": "process control",
    "os.abort": "process control", "os.fork": "process control", "signal": "process control",
    "_thread.interrupt_main": "process control", "faulthandler": "process control",
    "types.FunctionType": "function internals", "types.CodeType": "function internals",
    "marshal": "exec/eval/compile", "unittest.mock": "mock patch", "mock": "mock patch",
}
FORBIDDEN_ATTRS = {   # attribute names that are findings on any object
    "__code__": "function internals", "__globals__": "function internals", "__closure__": "function internals",
    "__defaults__": "function internals", "__kwdefaults__": "function internals", "__builtins__": "builtins",
    "__subclasses__": "builtins",
    "f_back": "frame inspection", "f_globals": "frame inspection", "f_locals": "frame inspection",
    "f_builtins": "frame inspection", "tb_frame": "frame inspection", "gi_frame": "frame inspection",
    "cr_frame": "frame inspection", "ag_frame": "frame inspection",
}
FORBIDDEN_NAMES = {"__builtins__": "builtins", "__import__": "dynamic import", "__loader__": "dynamic import"}
EXEC_NAMES = {"exec", "eval", "compile"}
PASSED_AROUND = {"setattr", "delattr", "exec", "eval", "compile", "globals", "locals", "vars", "__import__"}
IPYTHON_SAFE_ATTRS = {"run_line_magic", "run_cell_magic", "system", "getoutput"}
IPYTHON_BAD_MAGICS = {"run", "load_ext", "reload_ext", "load", "config", "autoreload", "aimport", "alias_magic",
                      "macro", "writefile", "store", "reset", "xdel"}
GRADER_ROOT = "utils"   # anything imported from the course package is the grader's


def _dotted(node) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return None


def _forbidden(dotted: str) -> str | None:
    parts = dotted.split(".")
    for n in range(len(parts), 0, -1):
        kind = FORBIDDEN.get(".".join(parts[:n]))
        if kind:
            return kind
    return None


def import_aliases(tree: ast.AST) -> tuple[dict[str, str], set[str]]:
    """{bound name: dotted origin} for every import in `tree`, and the set of imported module paths."""
    aliases, modules = {}, set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                modules.add(a.name)
                if a.asname:
                    aliases[a.asname] = a.name
                else:
                    root = a.name.split(".")[0]
                    aliases[root] = root
                    modules.add(root)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                if a.name != "*":
                    aliases[a.asname or a.name] = f"{node.module}.{a.name}"
    return aliases, modules


class _Scanner(ast.NodeVisitor):
    def __init__(self, src: str, aliases: dict[str, str], modules: set[str], guarded: dict[str, str]):
        self.lines = src.splitlines()
        self.aliases = dict(aliases)
        self.modules = set(modules)
        self.guarded = guarded            # names the rest of the notebook imported: rebinding them is tampering
        self.findings: dict[tuple[int, str], Finding] = {}
        self.function_depth = 0
        self.globals_declared: set[str] = set()
        self.local_defs: set[str] = set()
        self.grader_args: set[int] = set()
        self.called: set[int] = set()        # id() of the func node of every call   # id() of call nodes passed straight to a utils function

    # helpers
    def add(self, node, kind: str) -> None:
        line = getattr(node, "lineno", 1)
        text = self.lines[line - 1].strip() if 0 < line <= len(self.lines) else ""
        self.findings.setdefault((line, kind), Finding(line, kind, text))

    def resolve(self, node) -> str | None:
        """The dotted origin of a Name/Attribute chain rooted at an imported name, else None."""
        dotted = _dotted(node)
        if dotted is None:
            return None
        root, _, rest = dotted.partition(".")
        origin = self.aliases.get(root)
        if origin is None:
            return None
        return f"{origin}.{rest}" if rest else origin

    def is_grader(self, origin: str | None) -> bool:
        return origin is not None and (origin == GRADER_ROOT or origin.startswith(GRADER_ROOT + "."))

    def propagate(self, tree: ast.AST) -> None:
        """`m = _q`, `m: object = _q` and `for m in (_q, _c)` make `m` an alias too (two rounds: chains)."""
        for _ in range(2):
            for node in ast.walk(tree):
                if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                    origin = self.resolve(node.value)
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    if origin:
                        for t in targets:
                            if isinstance(t, ast.Name):
                                self.aliases.setdefault(t.id, origin)
                elif isinstance(node, (ast.For, ast.comprehension)) and isinstance(node.target, ast.Name) \
                        and isinstance(node.iter, (ast.Tuple, ast.List, ast.Set)):
                    origins = [self.resolve(e) for e in node.iter.elts]
                    hit = next((o for o in origins if self.is_grader(o)), None) or next((o for o in origins if o), None)
                    if hit:
                        self.aliases.setdefault(node.target.id, hit)

    # bindings of guarded names
    def check_binding(self, name: str, node, origin: str | None = None) -> None:
        if name not in self.guarded:
            return
        if self.function_depth and name not in self.globals_declared:
            return
        if origin is not None and origin == self.guarded[name]:
            return
        self.add(node, "rebinds an imported name")

    def bind_target(self, target, node) -> None:
        for t in ast.walk(target):
            if isinstance(t, ast.Name) and isinstance(t.ctx, (ast.Store, ast.Del)):
                self.check_binding(t.id, node)

    def check_write(self, target, node) -> None:
        """An attribute written (assigned, augmented, deleted) on an import or on anything from utils."""
        if isinstance(target, (ast.Tuple, ast.List)):
            for e in target.elts:
                self.check_write(e, node)
            return
        if isinstance(target, ast.Starred):
            self.check_write(target.value, node)
            return
        if isinstance(target, ast.Subscript):
            base = target.value
            if isinstance(base, ast.Call) and isinstance(base.func, ast.Name) and base.func.id in ("globals", "vars", "locals") \
                    and not base.args:
                self.add(node, "globals write")
            return
        if not isinstance(target, ast.Attribute):
            return
        base = self.resolve(target.value)
        if base is None:
            return
        if self.is_grader(base) or isinstance(target.value, ast.Name) or base in self.modules:
            self.add(node, "module attribute write")

    # statements
    def visit_Assign(self, node):
        for t in node.targets:
            self.check_write(t, node)
            self.bind_target(t, node)
        self.generic_visit(node)

    def visit_AnnAssign(self, node):
        self.check_write(node.target, node)
        self.bind_target(node.target, node)
        self.generic_visit(node)

    def visit_AugAssign(self, node):
        self.check_write(node.target, node)
        self.bind_target(node.target, node)
        self.generic_visit(node)

    def visit_Delete(self, node):
        for t in node.targets:
            self.check_write(t, node)
            self.bind_target(t, node)
        self.generic_visit(node)

    def visit_For(self, node):
        self.bind_target(node.target, node)
        self.generic_visit(node)

    visit_AsyncFor = visit_For

    def visit_With(self, node):
        for item in node.items:
            if item.optional_vars is not None:
                self.bind_target(item.optional_vars, node)
        self.generic_visit(node)

    visit_AsyncWith = visit_With

    def visit_NamedExpr(self, node):
        self.bind_target(node.target, node)
        self.generic_visit(node)

    def visit_Global(self, node):
        self.globals_declared.update(node.names)

    def _visit_def(self, node):
        self.check_binding(node.name, node)
        self.local_defs.add(node.name)
        for deco in node.decorator_list:
            self.visit(deco)
        if isinstance(node, ast.ClassDef):
            for b in node.bases + [k.value for k in node.keywords]:
                self.visit(b)
        else:
            self.visit(node.args)
            if node.returns is not None:
                self.visit(node.returns)
        saved = self.globals_declared
        self.function_depth += 1
        self.globals_declared = set()
        for stmt in node.body:
            self.visit(stmt)
        self.function_depth -= 1
        self.globals_declared = saved

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _visit_def

    def visit_Import(self, node):
        for a in node.names:
            name = a.asname or a.name.split(".")[0]
            origin = a.name if a.asname else a.name.split(".")[0]
            self.check_binding(name, node, origin)
            kind = _forbidden(a.name)
            if kind:
                self.add(node, kind)

    def visit_ImportFrom(self, node):
        if node.level:
            return
        for a in node.names:
            origin = f"{node.module}.{a.name}"
            if a.name == "*":
                kind = _forbidden(node.module)
                if kind:
                    self.add(node, kind)
                continue
            self.check_binding(a.asname or a.name, node, origin)
            kind = _forbidden(origin)
            if kind:
                self.add(node, kind)

    # expressions
    def visit_Attribute(self, node):
        kind = FORBIDDEN_ATTRS.get(node.attr)
        if kind:
            self.add(node, kind)
        origin = self.resolve(node)
        if origin:
            kind = _forbidden(origin)
            if kind:
                self.add(node, kind)
                return
            if node.attr == "__dict__":
                self.add(node, "module __dict__")
        if self._is_ipython(node.value) and node.attr not in IPYTHON_SAFE_ATTRS:
            self.add(node, "ipython internals")
        self.generic_visit(node)

    def visit_Compare(self, node):
        """`"google.colab" in sys.modules` only asks whether a module is loaded: not a finding."""
        if all(isinstance(op, (ast.In, ast.NotIn)) for op in node.ops) and len(node.comparators) == 1 \
                and self.resolve(node.comparators[0]) == "sys.modules":
            self.visit(node.left)
            return
        self.generic_visit(node)

    def visit_Name(self, node):
        if node.id in PASSED_AROUND and id(node) not in self.called and isinstance(node.ctx, ast.Load) \
                and self._is_builtin(node.id):
            self.add(node, "builtin passed around")   # f = setattr; f(quiz, ...)
        if node.id in FORBIDDEN_NAMES:
            self.add(node, FORBIDDEN_NAMES[node.id])
        origin = self.aliases.get(node.id)
        if origin:
            kind = _forbidden(origin)
            if kind:
                self.add(node, kind)

    def _is_builtin(self, name: str) -> bool:
        return name not in self.aliases and name not in self.local_defs and hasattr(builtins, name)

    @staticmethod
    def _is_ipython(node) -> bool:
        return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "get_ipython"

    def visit_Call(self, node):
        func = node.func
        self.called.add(id(func))
        if self.is_grader(self.resolve(func)):   # checks.check_defined(globals(), ...): the grader's own read
            self.grader_args.update(id(a) for a in node.args if isinstance(a, ast.Call))
        first = node.args[0] if node.args else None
        if isinstance(func, ast.Name) and self._is_builtin(func.id):
            if func.id in EXEC_NAMES:
                self.add(node, "exec/eval/compile")
            elif func.id in ("setattr", "delattr") and first is not None and self._imported(first):
                self.add(node, "setattr on an import")
            elif func.id == "vars" and first is not None and self.resolve(first):
                self.add(node, "module __dict__")
            elif (func.id == "globals" or (func.id == "locals" and not self.function_depth)) \
                    and id(node) not in self.grader_args:
                self.add(node, "globals write")
        if isinstance(func, ast.Attribute) and func.attr in ("__setattr__", "__delattr__") \
                and (self._imported(func.value) or (first is not None and self._imported(first))):
            self.add(node, "setattr on an import")
        if isinstance(func, ast.Attribute) and self._is_ipython(func.value) and func.attr in ("run_line_magic", "run_cell_magic") \
                and first is not None and isinstance(first, ast.Constant) and first.value in IPYTHON_BAD_MAGICS:
            self.add(node, "ipython internals")
        self.generic_visit(node)

    def _imported(self, node) -> bool:
        while isinstance(node, (ast.Attribute, ast.Subscript)):
            node = node.value
        return self.resolve(node) is not None


def scan_source(src: str, aliases: dict[str, str] | None = None, guarded: dict[str, str] | None = None,
                modules: set[str] | None = None) -> list[Finding]:
    """Every line of `src` that reaches into the grader, sorted by line.

    `aliases` ({name: dotted origin}) and `modules` are imports made elsewhere (the rest of the
    notebook); `guarded` are names whose rebinding is itself a finding. A source that does not
    parse gives one finding of kind 'unparseable'."""
    try:
        tree = parse_cell(src)
    except SyntaxError as exc:
        line = exc.lineno or 1
        lines = src.splitlines()
        return [Finding(line, "unparseable", lines[line - 1].strip() if 0 < line <= len(lines) else "")]
    own, own_modules = import_aliases(tree)
    scanner = _Scanner(src, {**(aliases or {}), **own}, (modules or set()) | own_modules, guarded or {})
    scanner.propagate(tree)
    scanner.visit(tree)
    return sorted(scanner.findings.values(), key=lambda f: (f.line, f.kind))


def _notebook_imports(nb: dict) -> tuple[dict[str, str], set[str]]:
    """The imports of every code cell of the notebook, first binding wins (the hidden tests use them)."""
    aliases, modules = {}, set()
    for cell in nb["cells"]:
        if cell.get("cell_type") != "code":
            continue
        try:
            a, m = import_aliases(parse_cell(cell_source(cell)))
        except SyntaxError:
            continue
        for name, origin in a.items():
            aliases.setdefault(name, origin)
        modules |= m
    return aliases, modules


def _scan(nb, release=None) -> list[tuple[int, str, list[Finding]]]:
    nb = load_notebook(nb)
    locked = locked_ids(release) if release is not None else None
    aliases, modules = _notebook_imports(nb)
    return [(index, cell_key(cell, index), scan_source(cell_source(cell), aliases, guarded=aliases, modules=modules))
            for index, cell in enumerate(nb["cells"]) if is_editable(cell, locked)]


def scan_notebook(nb, release=None) -> dict[str, list[Finding]]:
    """{cell key: findings} for every cell a student can edit, in cell order (an empty list: nothing found).

    `nb`: a path, a notebook dict or an nbformat node. The key is the cell's nbgrader grade_id, else
    'cell N' (N: its index in nb["cells"]). The imports of every cell count for every other (the
    hidden tests use the notebook's own `checks` and `quiz`). `release` (optional, the released
    notebook): trust only the locked cells it has, see `is_editable`. Raises NotebookError (one
    sentence) for a file that is not a notebook."""
    return {key: findings for _, key, findings in _scan(nb, release)}


def tampered_cells(nb, release=None) -> list[tuple[int, str, list[Finding]]]:
    """(index in nb["cells"], cell key, findings) for each editable cell with findings, in cell order."""
    return [row for row in _scan(nb, release) if row[2]]


def report_lines(findings: dict[str, list[Finding]]) -> list[str]:
    """One line per finding for grades.csv or feedback: 'cell_key line N: kind: text'."""
    return [f"{key} {f}" for key, items in findings.items() for f in items]


if __name__ == "__main__":
    import sys

    status = 0
    for arg in sys.argv[1:]:
        try:
            lines = report_lines(scan_notebook(arg))
        except NotebookError as exc:
            print(exc)
            status = 1
            continue
        print(f"{arg}: {len(lines)} finding(s)")
        print("\n".join(f"  {line}" for line in lines))
        status |= bool(lines)
    sys.exit(status)
