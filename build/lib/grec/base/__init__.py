"""grec's base layer: formats and atomic IO, config parsing, errors, the registry, the SID map and
its tokens, record templates and the one prompt-fitting rule. It imports nothing of grec above it."""
