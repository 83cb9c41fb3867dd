"""The shared package of the PEFT course: every notebook imports it, none copies from it.

Modules, each small and taught by a lesson:
- ``config``: profiles (smoke / colab / full) and the banner every notebook prints.
- ``runtime``: device, dtype, seeding, timing and memory, the Hugging Face token.
- ``hardware``: what this machine does (native bf16, bitsandbytes CPU paths), detected, never assumed.
- ``models``: one loader for Llama-3.2-1B and the tiny local model; the meta-device architecture.
- ``data``: UIT-VSFC and MedMCQA from the Hub, local files or the bundled samples.
- ``lora``: a teaching LoRA layer and parameter/memory arithmetic (lesson 01).
- ``quant``: quantisation helpers and the bitsandbytes CPU guard (lessons 02, 03, 07).
- ``checks``: friendly checks that graded tests use to explain a wrong answer.
- ``quiz``: lesson quizzes with hashed answer keys.
- ``course``: instructor commands (release, grade, feedback) on nbgrader's Python API.
- ``bench``: ``make bench`` timings (never in tests).
"""

__version__ = "0.1.0"

import logging as _logging
import warnings as _warnings

# Two known, harmless messages of the pinned stack, silenced once for every notebook:
# bitsandbytes 0.50 on AVX512-BF16 CPUs logs that an optional 'kernels' package is missing, and
# peft 0.21 calls a transformers method that v5 renamed (is_gradient_checkpointing).
_logging.getLogger("bitsandbytes").setLevel(_logging.ERROR)
_warnings.filterwarnings("ignore", message=r".*is_gradient_checkpointing.*", category=FutureWarning)
