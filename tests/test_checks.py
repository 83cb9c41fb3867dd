"""utils.checks: own-work checks that a wrapper around the course's reference cannot beat."""

import pytest
import torch

from utils import checks, lora, quant

NF4 = torch.tensor(quant.NF4_REFERENCE)
X = torch.tensor([0.0, 1.0, -1.0, 0.5, 0.3])


def _notebook(code: str) -> dict:
    """Run `code` as a notebook cell does: in a namespace whose __name__ is '__main__'."""
    namespace = {"__name__": "__main__"}
    exec(code, namespace)
    return namespace


WRAPPERS = {
    "module attribute": "from utils import quant\ndef nearest_level(x, l): return quant.nearest_level(x, l)",
    "imported name": "from utils.quant import nearest_level as ref\ndef nearest_level(x, l): return ref(x, l)",
    "default argument": "from utils import quant\ndef nearest_level(x, l, f=quant.nearest_level): return f(x, l)",
    "copied code": "import types, torch\nfrom utils import quant\nnearest_level = types.FunctionType(quant.nearest_level.__code__, globals())",
}


@pytest.mark.parametrize("code", WRAPPERS.values(), ids=WRAPPERS.keys())
def test_a_wrapper_around_the_reference_fails(code):
    nearest_level = _notebook(code)["nearest_level"]
    assert nearest_level(X, NF4).tolist() == [7, 15, 0, 12, 11]          # the visible test would pass
    with pytest.raises(AssertionError, match="reference `utils.quant.nearest_level`|under another name"):
        with checks.own_work(nearest_level, quant.nearest_level):
            nearest_level(X, NF4)
    assert quant.nearest_level(X, NF4).tolist() == [7, 15, 0, 12, 11]    # restored afterwards


def test_a_real_solution_passes():
    nearest_level = _notebook("def nearest_level(x, levels):\n"
                              "    return (x.unsqueeze(-1) - levels).abs().argmin(dim=-1)")["nearest_level"]
    with checks.own_work(nearest_level, quant.nearest_level):
        assert nearest_level(X, NF4).tolist() == [7, 15, 0, 12, 11]


def test_the_reference_itself_is_not_own_work():
    with pytest.raises(AssertionError, match="comes from 'utils.quant'"):
        with checks.own_work(quant.nearest_level, quant.nearest_level):
            pass


def test_a_subclass_of_a_reference_class_fails_and_the_class_is_restored():
    ns = _notebook("from utils import lora\nclass LoRALinear(lora.LoRALinear):\n    pass")
    with pytest.raises(AssertionError, match="utils.lora.LoRALinear.__init__"):
        with checks.own_work(ns["LoRALinear"], lora.LoRALinear):
            ns["LoRALinear"](torch.nn.Linear(4, 4), r=2, alpha=4)
    assert lora.LoRALinear(torch.nn.Linear(4, 4), r=2, alpha=4).scaling == 2.0


def test_restored_even_when_the_block_fails():
    fn = _notebook("def f(x, l): return 0")["f"]
    with pytest.raises(ZeroDivisionError):
        with checks.own_work(fn, quant.nearest_level):
            1 / 0
    assert quant.nearest_level(X, NF4).tolist() == [7, 15, 0, 12, 11]


def test_a_reference_that_is_not_a_function_is_refused():
    fn = _notebook("def f(): pass")["f"]
    with pytest.raises(TypeError, match="reference functions or classes"):
        with checks.own_work(fn, "quant.nearest_level"):
            pass
