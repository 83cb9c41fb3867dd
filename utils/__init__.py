"""The shared package of the PEFT course: exactly what the notebooks import, and what students get.

Modules, each small and taught by a lesson:
- ``config``: profiles (smoke / laptop / colab / full), the cache folder and the banner every notebook prints.
- ``runtime``: device, dtype, seeding, timing and memory, the Hugging Face token.
- ``hardware``: what this machine does (native bf16, bitsandbytes CPU paths), detected, never assumed.
- ``setup_check``: the setup cell's checks (standard library only).
- ``models``: one loader for Llama-3.2-1B, SmolLM2 and the tiny local model; the meta-device architecture.
- ``data``: UIT-VSFC and MedMCQA from the Hub, local files or the bundled samples (``samples/``).
- ``lora``: a teaching LoRA layer and parameter/memory arithmetic (lesson 01).
- ``quant``, ``qlora``: quantisation helpers, the bitsandbytes CPU guard, QLoRA memory (lessons 02, 03, 07).
- ``prompts``, ``train``, ``evaluation``, ``fewshot``, ``sweep``, ``mcq``, ``seq2seq``: lessons 04-08.
- ``results``: run records and tables; ``checks``: the checks graded tests use to explain a wrong answer.
- ``quiz``: lesson quizzes (students' half: hashed practice keys, the graded cells' helpers; banks in ``quizzes/``).
- ``demo``, ``lab``: the Gradio demo app and the JupyterLab kernel metadata.

The instructor's and maintainer's tools (release, grade, quiz authoring, bench, GPU and Colab
checks) live in ``course/tools/`` of the course repository, not here.
"""

__version__ = "0.1.0"

import logging as _logging
import warnings as _warnings

# Two known, harmless messages of the pinned stack, silenced once for every notebook:
# bitsandbytes 0.50 on AVX512-BF16 CPUs logs that an optional 'kernels' package is missing, and
# peft 0.21 calls a transformers method that v5 renamed (is_gradient_checkpointing).
_logging.getLogger("bitsandbytes").setLevel(_logging.ERROR)
_warnings.filterwarnings("ignore", message=r".*is_gradient_checkpointing.*", category=FutureWarning)
