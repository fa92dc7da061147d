"""Tensors of a PyTorch checkpoint as numpy arrays, for the simulator's speaker encoders.

A checkpoint's pickle rebuilds each tensor with `torch._utils._rebuild_tensor_v2(storage,
offset, shape, stride, ...)`. The encoders' restricted unpicklers resolve that global to
`rebuild_tensor`, which only records the view; `copy_view` then copies the elements out of the
storage's bytes after checking that every element the view names lies inside them.
"""

from __future__ import annotations

import pickle
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np


class WeightsError(RuntimeError):
    """The weights file is missing or is not the checkpoint the encoder understands."""


@dataclass(frozen=True, slots=True)
class TensorRef:
    storage: Any  # whatever the unpickler's persistent_load returned for the storage
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def rebuild_tensor(
    storage: Any, offset: int, shape: tuple[int, ...], stride: tuple[int, ...], *_: Any
) -> TensorRef:
    """Stands for torch._utils._rebuild_tensor_v2 (the remaining arguments are autograd's)."""
    return TensorRef(storage, int(offset), tuple(shape), tuple(stride))


class CheckpointUnpickler(pickle.Unpickler):
    """Resolves only the globals a plain state_dict checkpoint needs: OrderedDict, the tensor
    rebuild, and the storage types an encoder lists in `storages`; anything else is refused
    before it can run. Subclasses read their format's persistent ids."""

    storages: ClassVar[dict[str, object]] = {}  # torch.<name> → what persistent ids carry

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return rebuild_tensor
        if module == "torch" and name in self.storages:
            return self.storages[name]
        raise WeightsError(f"Unexpected object in the checkpoint: {module}.{name}")


def copy_view(name: str, ref: object, flat: np.ndarray, dtype: type[np.generic]) -> np.ndarray:
    """A copy, as `dtype`, of the elements of `flat` that the view `ref` names."""
    if not isinstance(ref, TensorRef):
        raise WeightsError(f"{name} is not a tensor.")
    if ref.offset < 0 or min(ref.shape, default=1) < 1 or min(ref.stride, default=0) < 0:
        raise WeightsError(f"Tensor {name} has a malformed view.")
    last = ref.offset + sum((n - 1) * s for n, s in zip(ref.shape, ref.stride, strict=True))
    if last >= len(flat):
        raise WeightsError(f"Tensor {name} lies outside its storage.")
    strides = tuple(flat.itemsize * s for s in ref.stride)
    view = np.lib.stride_tricks.as_strided(flat[ref.offset :], ref.shape, strides)
    return np.array(view, dtype=dtype)
