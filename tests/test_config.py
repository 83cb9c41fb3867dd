import json

import pytest
import torch

from utils import config, runtime


def test_env_var_chooses_profile(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    assert config.get_profile().name == "smoke"


def test_default_without_gpu_is_smoke(monkeypatch):
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    monkeypatch.setattr(config, "_gpu_available", lambda: False)
    assert config.get_profile().name == "smoke"


def test_default_with_gpu_is_colab(monkeypatch):
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    monkeypatch.setattr(config, "_gpu_available", lambda: True)
    assert config.get_profile().name == "colab"


def test_explicit_name_beats_env(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "colab")
    assert config.get_profile("Smoke ").name == "smoke"


def test_unknown_profile_says_what_exists():
    with pytest.raises(ValueError, match=r"Unknown course profile 'tiny'.*\['colab', 'full', 'laptop', 'smoke'\]"):
        config.get_profile("tiny")


def test_gpu_profile_without_gpu_says_what_to_do(monkeypatch):
    monkeypatch.setattr(config, "_gpu_available", lambda: False)
    with pytest.raises(RuntimeError, match="needs a CUDA GPU.*Change runtime type.*smoke"):
        config.get_profile("colab")


def test_overrides_replace_fields_and_none_is_ignored():
    p = config.get_profile("smoke", max_steps=3, lr=None)
    assert p.max_steps == 3 and p.lr == config.PROFILES["smoke"].lr
    with pytest.raises(ValueError, match="Unknown profile setting"):
        config.get_profile("smoke", max_stpes=3)


def test_full_profile_follows_the_seed_tutorial():
    full = config.PROFILES["full"]
    assert (full.max_steps, full.batch_size, full.eval_steps) == (5000, 4, 500)
    assert full.max_train_samples is None          # the seed's 20,000 exceeds the 11,426-sentence split
    assert full.sweep_ranks == (1, 2, 4, 8, 16, 32, 64, 128)


def test_smoke_banner_warns_numbers_are_not_meaningful(capsys):
    text = config.banner(config.get_profile("smoke"))
    assert "NOT meaningful" in text and "torch" in text and "profile : smoke" in text
    assert "NOT meaningful" in capsys.readouterr().out


def test_gpu_profiles_banner_has_no_smoke_warning(monkeypatch):
    monkeypatch.setattr(config, "_gpu_available", lambda: True)
    assert "NOT meaningful" not in config.banner(config.get_profile("colab"))


def test_cpu_dtype_and_trainer_precision():
    assert runtime.compute_dtype("cpu") == torch.float32
    assert runtime.precision_args("cpu") == {"bf16": False, "fp16": False, "use_cpu": True}


# (name, compute capability): what `torch.cuda.is_bf16_supported()` says on each (True on a T4
# through emulation) and what the course must pick.
SIMULATED_GPUS = [("Tesla T4", (7, 5), torch.float16), ("Tesla V100", (7, 0), torch.float16),
                  ("A100", (8, 0), torch.bfloat16), ("H100", (9, 0), torch.bfloat16)]


@pytest.mark.parametrize("name,capability,expected", SIMULATED_GPUS)
def test_dtype_follows_native_bf16_not_emulation(monkeypatch, name, capability, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a, **k: capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation or capability >= (8, 0))
    assert runtime.compute_dtype("cuda") == expected, name
    args = runtime.precision_args("cuda")
    assert args == {"bf16": expected == torch.bfloat16, "fp16": expected == torch.float16, "use_cpu": False}, name
    assert not (args["bf16"] and capability < (8, 0)), f"{name}: bf16 enabled without native support"
    assert runtime.compute_dtype() == expected                 # the default device is the GPU here


def test_cpu_never_gets_half_precision(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert runtime.compute_dtype() == torch.float32
    assert runtime.precision_args() == {"bf16": False, "fp16": False, "use_cpu": True}


def test_measure_reports_time_and_memory(capsys):
    with runtime.measure("block") as m:
        sum(range(10_000))
    assert m.seconds >= 0 and m.peak_bytes > 0
    assert capsys.readouterr().out.startswith("block:")


def test_seeding_repeats():
    runtime.seed_everything(3)
    a = torch.rand(3)
    runtime.seed_everything(3)
    assert torch.equal(a, torch.rand(3))


def test_token_comes_from_env_never_code(monkeypatch):
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    assert runtime.hf_token() is None
    monkeypatch.setenv("HF_TOKEN", " hf_example \n")
    assert runtime.hf_token() == "hf_example"


def test_hub_errors_become_instructions(monkeypatch):
    import httpx
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    def response(status):
        return httpx.Response(status, request=httpx.Request("GET", "https://huggingface.co/api/models/x"))

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    gated = runtime.explain_hub_error(GatedRepoError("Access to model is restricted", response=response(403)),
                                      "meta-llama/Llama-3.2-1B-Instruct", mirror_id=config.LLAMA_MIRROR_ID)
    assert gated.kind == "gated" and "gated" in str(gated) and "HF_TOKEN" in str(gated) and "unsloth/Llama-3.2-1B-Instruct" in str(gated)
    missing = runtime.explain_hub_error(RepositoryNotFoundError("Repository Not Found", response=response(404)),
                                        "nobody/nothing")
    assert missing.kind == "missing" and "not found" in str(missing)


def test_runtime_does_not_import_the_configuration():
    """config -> runtime only: config is data (and its banner reads the device); no import cycle."""
    import ast
    from pathlib import Path

    tree = ast.parse(Path(runtime.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {f"utils.{a.name}" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module == "utils"
                 for a in n.names}
    assert "utils.config" not in imported, "utils.runtime imports utils.config: the cycle is back"


def test_laptop_profile_runs_real_weights_on_the_cpu_and_real_data_only_online(monkeypatch, capsys):
    monkeypatch.setattr(config, "_gpu_available", lambda: False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    online = config.get_profile("laptop")
    assert online.model_id == config.SMOLLM2_ID and not online.needs_gpu
    assert online.vsfc_source == config.VSFC_HUB_ID and online.meaningful
    assert "LAPTOP PROFILE: real pretrained weights" in config.banner(online)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    offline = config.get_profile("laptop")
    assert (offline.vsfc_source, offline.medmcqa_source, offline.meaningful) == ("sample", "sample", False)
    assert "NOT meaningful" in config.banner(offline)
    # what the lessons print under their result tables: the laptop's own words, never smoke's
    assert config.caveat(offline) == config.LAPTOP_OFFLINE_WARNING and config.caveat(online) == config.LAPTOP_NOTE
    assert config.caveat(config.get_profile("smoke")) == config.SMOKE_WARNING
    monkeypatch.setattr(config, "_gpu_available", lambda: True)
    assert config.caveat(config.get_profile("colab")) == ""


def test_lessons_print_their_profiles_caveat_not_a_fixed_warning(root):
    for nb in sorted(root.glob("solutions/*/*.ipynb")):
        cells = json.loads(nb.read_text())["cells"]
        code = "".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        assert "config.SMOKE_WARNING" not in code, f"{nb.name}: print config.caveat(profile), which knows the profile"


def test_build_once_builds_in_a_temporary_folder_then_renames(tmp_path, monkeypatch):
    """utils.config.build_once: one build per target, an atomic rename, nothing left behind when a build fails."""
    from utils import config

    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "empty-cache"))
    calls = []

    def build(folder):
        assert folder.parent == config.cache_root() and folder.name.startswith(".building-")
        calls.append(folder)
        (folder / "model.safetensors").write_text("weights")

    target = config.cache_root() / "thing-123"
    assert config.build_once(target, build) == target and (target / "model.safetensors").read_text() == "weights"
    assert config.build_once(target, build) == target and len(calls) == 1, "a built target is not built again"

    def broken(folder):
        (folder / "half.bin").write_text("x")
        raise RuntimeError("the build failed")

    with pytest.raises(RuntimeError):
        config.build_once(config.cache_root() / "other", broken)
    assert sorted(p.name for p in config.cache_root().iterdir()) == ["thing-123"], "no half-built folder is left"
