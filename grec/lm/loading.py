"""Load the model and tokenizer to train: a folder, a hub name or a GGUF file; SID tokens; LoRA."""

from __future__ import annotations

from pathlib import Path

import torch

from grec.base.errors import GrecError
from grec.lm.gguf import convert_gguf

PACKAGED_LLM = "smollm2"


def resolve_base_model(base_model: str, tokenizer_only: bool = False) -> str:
    """A loadable name: GGUF files become cached folders; folders and hub names pass through.

    ``tokenizer_only``: the folder need only hold a tokenizer (``--from_scratch``). The name
    ``smollm2`` stands for the packaged SmolLM2-135M-Instruct GGUF file (../shared/ASSETS.md).
    """
    if base_model == PACKAGED_LLM:
        from grec.base.assets import smollm2_gguf

        base_model = str(smollm2_gguf())
    path = Path(base_model)
    if path.suffix == ".gguf":
        if not path.is_file():
            raise GrecError(f"{path}: GGUF file not found (given as --base_model)")
        return str(convert_gguf(path))
    needed = "tokenizer_config.json" if tokenizer_only else "config.json"
    if path.exists() and not (path / needed).is_file():
        raise GrecError(f"{path}: not a Hugging Face {'tokenizer' if tokenizer_only else 'model'} folder (no {needed})")
    if not path.exists() and (base_model.startswith((".", "/", "~")) or base_model.count("/") != 1):
        raise GrecError(f"{base_model}: model not found; give a model folder, a hub name (org/name) or a .gguf file")
    return base_model


def is_seq2seq(config, model_type: str) -> bool:
    if model_type != "auto":
        return model_type == "seq2seq"
    return bool(getattr(config, "is_encoder_decoder", False))


def load_model(
    base_model: str,
    model_type: str = "auto",
    dtype: torch.dtype = torch.float32,
    attn_implementation: str | None = None,
    load_in_4bit: bool = False,
    in_memory: bool = False,
):
    """(model, tokenizer, seq2seq) for a resolved ``base_model``; ``attn_implementation`` picks the attention
    kernel (eager, sdpa, flash_attention_2, ...), ``load_in_4bit`` quantizes the weights with bitsandbytes (QLoRA).
    ``in_memory`` reads the weights into memory instead of mapping the files (about 1 s more for SmolLM2):
    for a model that stays loaded while its files may be copied over (``grec serve``, the ``Recommender``)."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    try:
        config = AutoConfig.from_pretrained(base_model)
    except OSError as err:
        raise GrecError(f"{base_model}: cannot load the model config ({err})") from None
    seq2seq = is_seq2seq(config, model_type)
    loader = AutoModelForSeq2SeqLM if seq2seq else AutoModelForCausalLM
    options = {"attn_implementation": attn_implementation} if attn_implementation else {}
    # weights mapped from the files change with them, and a file cut short kills the process (SIGBUS) at the
    # next page fault: a model that is served reads them into memory instead
    load = {"disable_mmap": True} if in_memory else {}
    if load_in_4bit:
        options.update(quantization_config=four_bit_config(dtype), device_map={"": 0})
    try:
        model = loader.from_pretrained(base_model, dtype=dtype, **load, **options)
    except (ValueError, ImportError) as err:
        if not options:
            raise
        raise GrecError(f"{base_model}: cannot load with {', '.join(options)} ({str(err)[:300]})") from None
    tokenizer = AutoTokenizer.from_pretrained(base_model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer, seq2seq


def four_bit_config(compute_dtype: torch.dtype):
    """bitsandbytes NF4 weights with double quantization (the QLoRA recipe); needs a CUDA GPU."""
    from transformers import BitsAndBytesConfig

    if not torch.cuda.is_available():
        raise GrecError("--load_in_4bit: needs a CUDA GPU (bitsandbytes' 4-bit kernels); train without it on a CPU")
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16 if compute_dtype == torch.float32 else compute_dtype,
    )


def build_from_config(config_file: str, tokenizer_source: str, model_type: str = "auto"):
    """(model, tokenizer, seq2seq): random weights from a config JSON, the tokenizer of ``tokenizer_source``."""
    import json

    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    settings = json.loads(Path(config_file).read_text())
    if "model_type" not in settings:
        raise GrecError(f'{config_file}: a model config needs a \'model_type\' (e.g. "t5" or "llama")')
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_source)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    settings.update(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )
    config = AutoConfig.for_model(**settings)
    if getattr(config, "is_encoder_decoder", False):
        config.decoder_start_token_id = tokenizer.pad_token_id
    seq2seq = is_seq2seq(config, model_type)
    model = (AutoModelForSeq2SeqLM if seq2seq else AutoModelForCausalLM).from_config(config)
    return model, tokenizer, seq2seq


def module_names(model) -> list[str]:
    """Names (last component) of the model's linear layers, the usual LoRA targets."""
    return sorted({name.rsplit(".", 1)[-1] for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)})


def apply_lora(
    model, seq2seq: bool, r: int, alpha: int, dropout: float, targets: list[str], token_ids: list[int] | None = None
):
    """Wrap ``model`` with LoRA adapters on ``targets``; ``token_ids`` rows of the embeddings (and an
    untied output layer) are trained too."""
    from peft import LoraConfig, TaskType, get_peft_model

    available = module_names(model)
    unknown = [t for t in targets if t not in available]
    if unknown:
        raise GrecError(
            f"--lora_target_modules: {', '.join(unknown)} match nothing in this model; its linear layers are: "
            f"{', '.join(available)}"
        )
    trainable = None
    if token_ids:
        embed = model.get_input_embeddings()
        names = {module: name.rsplit(".", 1)[-1] for name, module in model.named_modules()}
        trainable = {names[embed]: list(token_ids)}
        head = model.get_output_embeddings()
        if head is not None and head.weight.data_ptr() != embed.weight.data_ptr():
            trainable[names[head]] = list(token_ids)
    config = LoraConfig(
        task_type=TaskType.SEQ_2_SEQ_LM if seq2seq else TaskType.CAUSAL_LM,
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=targets,
        trainable_token_indices=trainable,
    )
    return get_peft_model(model, config)


def record_base_model(model, name: str) -> None:
    """Name the base model in the adapter config a LoRA checkpoint saves (``base_model_name_or_path``),
    the name peft's ``AutoPeftModel*.from_pretrained`` loads the base from."""
    for config in model.peft_config.values():
        config.base_model_name_or_path = name
