"""Turn nested training state into named arrays plus JSON metadata, and back, without pickle.

Module and optimiser ``state_dict()``s, torch generator states and a simulated world's state are
nested dicts and lists whose leaves are tensors, numpy arrays or plain values. :func:`split_state`
moves every array leaf into a flat ``{name: np.ndarray}`` dict (ready for HDF5 datasets) and leaves
a JSON-serialisable skeleton that names them; :func:`join_state` rebuilds the original structure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

__all__ = ["split_state", "join_state"]

_ARRAY_KEY = "__array__"


def split_state(state: Any, prefix: str) -> tuple[dict[str, np.ndarray], Any]:
    """Return ``(arrays, skeleton)``; array leaves are named ``prefix.key.subkey...``."""
    arrays: dict[str, np.ndarray] = {}

    def walk(value: Any, name: str) -> Any:
        if isinstance(value, torch.Tensor):
            arrays[name] = value.detach().cpu().numpy().copy()
            return {_ARRAY_KEY: name, "kind": "torch"}
        if isinstance(value, np.ndarray):
            arrays[name] = value.copy()
            return {_ARRAY_KEY: name, "kind": "numpy"}
        if isinstance(value, Mapping):
            return {str(key): walk(item, f"{name}.{key}") for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [walk(item, f"{name}.{index}") for index, item in enumerate(value)]
        if isinstance(value, np.generic):
            return value.item()
        if value is None or isinstance(value, bool | int | float | str):
            return value
        raise TypeError(
            f"cannot checkpoint {type(value).__name__} at {name!r} without pickle; "
            "state must be tensors, numpy arrays, numbers, strings, None, dicts and lists"
        )

    return arrays, walk(state, prefix)


def join_state(skeleton: Any, arrays: Mapping[str, np.ndarray]) -> Any:
    """Inverse of :func:`split_state`: put the arrays back where the skeleton names them."""
    if isinstance(skeleton, Mapping):
        if _ARRAY_KEY in skeleton:
            array = np.array(arrays[skeleton[_ARRAY_KEY]], copy=True)
            return torch.from_numpy(array) if skeleton["kind"] == "torch" else array
        return {key: join_state(item, arrays) for key, item in skeleton.items()}
    if isinstance(skeleton, list):
        return [join_state(item, arrays) for item in skeleton]
    return skeleton
