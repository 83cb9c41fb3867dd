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


# Lesson 04's learning check (issue 15); `make robustness` prints its margins over seeds and threads.
SENTIMENT_BARS = {"over_majority": 0.05, "over_untrained": 0.10, "nll_ratio": 0.80, "max_unparseable": 0.20}


def sentiment_learning(accuracy: float, untrained: float, majority: float, label_nll: float, prior_nll: float,
                       unparseable: float, bars: dict | None = None) -> dict:
    """Lesson 04's learning check: {quantity: (value, bar, margin)}, margin > 0 passes.

    - label-scoring accuracy above the majority class (+0.05) and the untrained model (+0.10);
    - the true label's NLL below ``nll_ratio`` x the NLL of the training label frequencies (the
      prior): the model learned about the *label*, not only that "Sentiment: ... <eot>" comes;
    - generation names a label in most replies (unparseable rate below ``max_unparseable``).

    Example:
        >>> m = sentiment_learning(0.9, 0.3, 0.5, 0.3, 0.8, 0.0)
        >>> [round(margin, 2) for _, _, margin in m.values()]
        [0.35, 0.5, 0.34, 0.2]
    """
    b = {**SENTIMENT_BARS, **(bars or {})}
    above = {f"accuracy, above majority class + {b['over_majority']:.2f}": (accuracy, majority + b["over_majority"]),
             f"accuracy, above untrained model + {b['over_untrained']:.2f}": (accuracy, untrained + b["over_untrained"])}
    below = {f"label NLL, below {b['nll_ratio']:.2f} x prior NLL": (label_nll, b["nll_ratio"] * prior_nll),
             f"unparseable replies, below {b['max_unparseable']:.2f}": (unparseable, b["max_unparseable"])}
    return {**{k: (v, bar, v - bar) for k, (v, bar) in above.items()},
            **{k: (v, bar, bar - v) for k, (v, bar) in below.items()}}


def sweep_learning(mean_accuracy: float, untrained: float, majority: float, max_final_loss: float,
                   over: float = 0.05, max_loss: float = 1.0) -> dict:
    """Lesson 06's learning check, margins as ``sentiment_learning``: the sweep's mean label-scoring
    accuracy above the better of the untrained model and the majority class by `over`, and every
    run's last training loss below `max_loss`.
    """
    bar = max(untrained, majority) + over
    return {f"mean accuracy, above max(untrained, majority) + {over:.2f}": (mean_accuracy, bar, mean_accuracy - bar),
            f"largest final training loss, below {max_loss:.2f}": (max_final_loss, max_loss, max_loss - max_final_loss)}


def check_sentiment_learned(margins: dict) -> str:
    """Fail with the missed bars of ``sentiment_learning`` in one sentence; return a one-line summary."""
    missed = [f"{name} ({value:.3f}, bar {bar:.3f})" for name, (value, bar, margin) in margins.items() if not margin > 0]
    if missed:
        raise AssertionError("This run did not learn the label: " + "; ".join(missed) + ". A broken prompt mask "
                             "or collator does this: look at the labels of one training batch.")
    return "; ".join(f"{name.split(',')[0]} margin {margin:+.3f}" for name, (_, _, margin) in margins.items())


def check_defined(namespace: dict, *names: str, hint: str = ""):
    """Fail with a sentence when a cell that defines `names` has not run (or failed)."""
    missing = [n for n in names if n not in namespace]
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        raise AssertionError(f"{' and '.join(missing)} {verb} not defined yet: {hint or 'run the cells above this test first'}.")
