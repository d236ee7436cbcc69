"""Dtype-aware comparison helpers."""

import numpy as np

RTOL = {np.dtype("float64"): 1e-12, np.dtype("float32"): 2e-6}


def rtol_for(x) -> float:
    return RTOL.get(np.asarray(x).dtype, 1e-12)


def assert_allclose(actual, desired, *, factor=10.0, atol=0.0):
    """assert_allclose with a relative tolerance set by the dtype of `actual`."""
    np.testing.assert_allclose(np.asarray(actual), desired, rtol=factor * rtol_for(actual), atol=atol)


def central_difference(f, x, rel_step=1e-6):
    """(f(x(1+h)) - f(x(1-h))) / 2h·x: the log-derivative numerator x·df/dx."""
    h = rel_step * x
    return (f(x + h) - f(x - h)) / (2 * h) * x


# a small Llama-like Hugging Face config.json, for model-import tests
TINY_HF_CONFIG = {
    "hidden_size": 2048,
    "intermediate_size": 8192,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "num_hidden_layers": 16,
    "vocab_size": 128256,
    "tie_word_embeddings": True,
    "head_dim": 64,
}


def run_to_file(spec, path):
    """`sweep.run(spec, out=path)` read into memory and its file closed.

    A streamed run returns its file opened lazily; a test that then runs `sweep show` or `sweep plot`
    on the same path would open it a second time, from the CLI's worker thread, while this process
    still holds it open: HDF5 is not thread-safe and has crashed the test worker there."""
    import sweep

    ds = sweep.run(spec, out=path)
    loaded = ds.load()
    ds.close()
    return loaded
