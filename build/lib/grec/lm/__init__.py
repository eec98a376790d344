"""Language-model machinery: loading (folders, hub names, GGUF), LoRA, SID-token rows, checkpoints,
text encoders, attention choices and the CPU speedups (each a block that restores the model)."""
