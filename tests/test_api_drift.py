"""Every keyword the notebooks and utils pass to transformers / peft / trl / bitsandbytes configs is
still accepted by the pinned versions. A renamed keyword fails here, never silently at run time."""

import ast
import dataclasses
import inspect
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _targets():
    from peft import IA3Config, LoraConfig, PrefixTuningConfig
    from transformers import BitsAndBytesConfig, Trainer, TrainingArguments
    from trl import SFTConfig, SFTTrainer

    return {c.__name__: c for c in (SFTConfig, TrainingArguments, LoraConfig, PrefixTuningConfig, IA3Config,
                                    BitsAndBytesConfig, SFTTrainer, Trainer)}


def accepted_keywords(cls) -> set[str] | None:
    """The keyword names a class declares in its __init__; None when it declares none (only **kwargs).

    Declared names, not what happens to run: BitsAndBytesConfig also takes **kwargs and silently
    swallows a typo such as load_in_4bitt=True, which this check reports.
    """
    params = inspect.signature(cls.__init__).parameters
    named = {n for n, p in params.items() if n != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    return named or None


def keyword_uses(source: str, names) -> list[tuple[str, str, int]]:
    """(class, keyword, line) for every call of a class in `names` with literal keywords."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            if func in names:
                out += [(func, kw.arg, node.lineno) for kw in node.keywords if kw.arg]
    return out


def _sources():
    for path in sorted(ROOT.glob("solutions/*/*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        code = "\n".join(line for line in code.splitlines() if not line.lstrip().startswith(("!", "%")))
        yield path.relative_to(ROOT), code
    for path in sorted(ROOT.glob("utils/*.py")):
        yield path.relative_to(ROOT), path.read_text()


def test_every_keyword_used_is_accepted_by_the_pinned_versions():
    targets = _targets()
    uses, problems = 0, []
    for where, source in _sources():
        for cls_name, kw, line in keyword_uses(source, targets):
            uses += 1
            accepted = accepted_keywords(targets[cls_name])
            if accepted is not None and kw not in accepted:
                problems.append(f"{where}:{line}: {cls_name}({kw}=...) is not accepted")
    assert not problems, "\n".join(problems)
    assert uses > 0, "the scan found no config calls at all: the parser is broken"


@pytest.mark.parametrize("snippet", [
    "SFTConfig(output_dir='o', max_seq_length=128)",
    "SFTConfig(output_dir='o', evaluation_strategy='steps')",
    "SFTTrainer(model=m, tokenizer=t)",
    "TrainingArguments(output_dir='o', overwrite_output_dir=True)",
    "BitsAndBytesConfig(load_in_4bitt=True)",                        # swallowed by **kwargs at run time
])
def test_the_checker_catches_known_removed_keywords(snippet):
    targets = _targets()
    (cls_name, kw, _), = keyword_uses(snippet, targets) [-1:]
    assert kw not in accepted_keywords(targets[cls_name]), f"{cls_name} still accepts {kw}"


def test_sftconfig_defaults_that_bite_on_cpu():
    from trl import SFTConfig

    fields = {f.name: f.default for f in dataclasses.fields(SFTConfig)}
    assert fields["bf16"] is True or fields["bf16"] is None, "SFTConfig's bf16 default changed: revisit runtime.precision_args"
    assert "max_length" in fields and "processing_class" in inspect.signature(__import__("trl").SFTTrainer.__init__).parameters
