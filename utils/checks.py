"""Friendly checks for graded tests: one clear sentence instead of a traceback from a library.

Example:
    >>> import torch
    >>> check_tensor(torch.zeros(2, 3), "out", shape=(2, 3), dtype=torch.float32)
"""

from __future__ import annotations


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


def check_defined(namespace: dict, *names: str, hint: str = ""):
    """Fail with a sentence when a cell that defines `names` has not run (or failed)."""
    missing = [n for n in names if n not in namespace]
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        raise AssertionError(f"{' and '.join(missing)} {verb} not defined yet: {hint or 'run the cells above this test first'}.")
