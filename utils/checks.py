"""Friendly checks for graded tests: one clear sentence instead of a traceback from a library.

Example:
    >>> import torch
    >>> check_tensor(torch.zeros(2, 3), "out", shape=(2, 3), dtype=torch.float32)
"""

from __future__ import annotations

import contextlib
import types


def check_implemented(fn, *args, **kwargs):
    """Call a student function; a NotImplementedError becomes a message naming the exercise."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise AssertionError(
            f"`{getattr(fn, '__name__', fn)}` is not written yet: replace `raise NotImplementedError()` "
            "in its cell with your solution, run that cell, then run this test again."
        ) from None


def check_type(value, expected_type, name: str):
    """Fail with a sentence saying which type was expected and which came back."""
    if not isinstance(value, expected_type):
        wanted = getattr(expected_type, "__name__", str(expected_type))
        raise AssertionError(f"{name} should be a {wanted}, but it is a {type(value).__name__}: check what your function returns.")
    return value


def check_tensor(value, name: str, shape=None, dtype=None):
    """Check that `value` is a torch tensor of the given shape and dtype, explaining any mismatch."""
    import torch

    check_type(value, torch.Tensor, name)
    if shape is not None and tuple(value.shape) != tuple(shape):
        raise AssertionError(f"{name} should have shape {tuple(shape)}, but it has {tuple(value.shape)}.")
    if dtype is not None and value.dtype != dtype:
        raise AssertionError(f"{name} should have dtype {dtype}, but it has {value.dtype}.")
    return value


def check_close(actual, expected, name: str, atol: float = 1e-6, rtol: float = 1e-5):
    """Compare tensors (or numbers) and say how far apart they are when they differ."""
    import torch

    a = torch.as_tensor(actual, dtype=torch.float64)
    e = torch.as_tensor(expected, dtype=torch.float64)
    if a.shape != e.shape:
        raise AssertionError(f"{name} should have shape {tuple(e.shape)}, but it has {tuple(a.shape)}.")
    if not torch.allclose(a, e, atol=atol, rtol=rtol):
        worst = (a - e).abs().max().item()
        raise AssertionError(f"{name} is not close enough to the expected value: largest difference {worst:.3g} "
                             f"(allowed {atol:g} + {rtol:g} x |expected|).")


def check_own_function(fn, name: str):
    """Fail if `fn` was imported from utils instead of written in the notebook."""
    module = getattr(fn, "__module__", "")
    if module != "__main__":
        raise AssertionError(f"`{name}` comes from {module!r}; write your own in the exercise cell (importing the "
                             "course's reference does not earn the points).")


def _functions_of(obj) -> list[types.FunctionType]:
    """The plain functions behind a function, or behind every method of a class (its own, not inherited)."""
    if isinstance(obj, types.FunctionType):
        return [obj]
    if isinstance(obj, type):
        out = []
        for value in vars(obj).values():
            if isinstance(value, (staticmethod, classmethod)):
                value = value.__func__
            if isinstance(value, property):
                out += [f for f in (value.fget, value.fset) if isinstance(f, types.FunctionType)]
            elif isinstance(value, types.FunctionType):
                out.append(value)
        return out
    return []


def _raising_code(target: types.FunctionType, message: str) -> types.CodeType:
    """Code that raises AssertionError(message), with as many free variables as `target` has
    (a method that calls super() closes over __class__), so it can stand in for target.__code__."""
    free = [f"_free{i}" for i in range(len(target.__code__.co_freevars))]
    lines = ["def _outer():", *[f"    {v} = None" for v in free], "    def _stub(*args, **kwargs):",
             *[f"        {v}" for v in free], f"        raise AssertionError({message!r})", "    return _stub"]
    namespace: dict = {}
    exec("\n".join(lines), namespace)   # noqa: S102 - builds a fixed stub, no user input
    return namespace["_outer"]().__code__


@contextlib.contextmanager
def own_work(fn, *references, name: str | None = None):
    """Hidden tests: `fn` must be the student's own, even when it only wraps the course's reference.

    Checks that `fn` was defined in the notebook (as `check_own_function`), then runs the block
    with every reference in `references` (a utils function or class) switched off: calling it
    raises, however it was imported (the function's code is swapped, not a module attribute),
    and so does any subclass that inherits its methods. Everything is restored afterwards.
    Compute expected values from a reference *before* the block.

    Example (lesson 03):
        >>> with own_work(nearest_level, quant.nearest_level):
        ...     assert nearest_level(torch.tensor([0.0]), NF4).item() == 7
    """
    name = name or getattr(fn, "__name__", repr(fn))
    check_own_function(fn, name)
    targets = []
    for ref in references:
        found = _functions_of(ref)
        if not found:
            raise TypeError(f"own_work needs the reference functions or classes themselves, got {ref!r}.")
        targets += found
    originals = [(t, t.__code__) for t in targets]
    copied = {f.__code__ for f in _functions_of(fn)} & {code for _, code in originals}
    if copied:
        raise AssertionError(f"`{name}` is the course's reference under another name; write your own.")
    try:
        for target, _ in originals:
            where = f"{target.__module__}.{target.__qualname__}"
            target.__code__ = _raising_code(target, (
                f"`{name}` relies on the course's reference `{where}`, which this graded test switches off: "
                "write the computation in your own code (using the reference does not earn the points)."))
        yield
    finally:
        for target, code in originals:
            target.__code__ = code


def check_defined(namespace: dict, *names: str, hint: str = ""):
    """Fail with a sentence when a cell that defines `names` has not run (or failed)."""
    missing = [n for n in names if n not in namespace]
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        raise AssertionError(f"{' and '.join(missing)} {verb} not defined yet: {hint or 'run the cells above this test first'}.")
