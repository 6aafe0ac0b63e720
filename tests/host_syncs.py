"""What would make the host wait for a GPU, caught on a CPU: the meta device stands in for the GPU.

On a GPU the host waits (a sync) when it reads a device value (``.item()``, ``bool()``, ``.tolist()``,
``.cpu()``) and when host data is copied to the device from ordinary (pageable) memory, which PyTorch does
behind a Python list used as an index or as tensor data (``x[[1, 2]]``, ``x.new_tensor([...])``) and in
front of a host tensor given to an op with device tensors. `HostSyncGuard` runs code on meta tensors (the
"device") and fails on each of these:

* ``aten._local_scalar_dense`` of a meta tensor (``.item()``, ``bool()``, ``int()``...);
* a copy between the meta device and the CPU (``.cpu()``, ``.tolist()``, ``.to("meta")``);
* an op given meta tensors and a CPU tensor that is not 0-d (a 0-d CPU tensor is a scalar argument, read
  by the host, not copied);
* a meta tensor the guard has not seen made: neither one of the ``known`` tensors it started with (weights,
  inputs, optimiser state) nor the output of an op it watched. PyTorch copies a list index or tensor data
  to the device below the dispatcher, so such tensors appear from nowhere.

`torch.cuda.set_sync_debug_mode` catches the same on a real GPU (the ``cuda``-marked tests use it).
"""
from collections.abc import Iterable

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves


class HostSync(AssertionError):
    """Something in the guarded block would make the host wait for the device."""


class HostSyncGuard(TorchDispatchMode):
    """Fail on anything that would sync a GPU, with meta tensors as the device (see the module).

    Args:
        known: the device tensors that exist before the block (weights, buffers, inputs, optimiser state).
    """

    def __init__(self, known: Iterable[torch.Tensor]) -> None:
        super().__init__()
        self.kept = list(known)  # storages stay distinct while their tensors live
        self.seen = {_storage(t) for t in self.kept}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        tensors = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        device = [t for t in tensors if t.is_meta]
        if func is torch.ops.aten._local_scalar_dense.default and device:
            raise HostSync(f"{func}: a device value read on the host (.item(), bool(), int())")
        target = kwargs.get("device")
        if func in (torch.ops.aten._to_copy.default, torch.ops.aten.copy_.default) and tensors:
            places = {t.device.type for t in tensors} | ({torch.device(target).type} if target else set())
            if {"meta", "cpu"} <= places:
                raise HostSync(f"{func}: a copy between host and device ({sorted(places)})")
        if device:
            host = [tuple(t.shape) for t in tensors if t.device.type == "cpu" and t.dim() > 0]
            if host:
                raise HostSync(f"{func}: host tensors of shapes {host} meet device tensors (copied to the "
                               "device first)")
            unseen = [tuple(t.shape) for t in device if _storage(t) not in self.seen]
            if unseen:
                raise HostSync(f"{func}: device tensors of shapes {unseen} made from host data (a Python "
                               "list as an index or as tensor data is copied to the device)")
        out = func(*args, **kwargs)
        made = [t for t in tree_leaves(out) if isinstance(t, torch.Tensor)]
        self.seen.update(_storage(t) for t in made)
        self.kept.extend(made)
        return out


def _storage(tensor: torch.Tensor) -> int:
    """Which storage ``tensor`` views: views and autograd's saved copies of a tensor share it."""
    return tensor.untyped_storage()._cdata
