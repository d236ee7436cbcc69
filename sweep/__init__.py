"""sweep: vectorised, differentiable energy efficiency of LLM inference (tokens per joule)."""

import jax

jax.config.update("jax_enable_x64", True)

__version__ = "0.1.0"
