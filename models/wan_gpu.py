"""GPU placement of a two-expert WanPipeline (production path).

Modes, picked in this order:

* ``group_offload``: diffusers' block-level group offload with CUDA streams on every
  component (lowest VRAM, slower);
* ``resident``: text encoder, both experts and the VAE all fit: everything stays on the GPU;
* ``swap``: only the active big module (text encoder, high-noise expert or low-noise expert)
  is on the GPU. Every swappable module keeps a pinned CPU copy of its weights, so evicting is
  free (no device-to-host copy) and uploading is an async host-to-device copy on a side CUDA
  stream, block by block, with one event per block: the incoming expert starts computing its
  first block as soon as that block has arrived while later blocks are still in flight. When
  there is room for the incoming expert before the switch, the upload starts one step early
  and is fully hidden behind the last high-noise step.

Options on top (``GpuOptions``): FP8 layerwise casting of the experts
(``enable_layerwise_casting``) and VAE tiling. Nothing here touches CUDA until a placement is made.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

MARGIN_BYTES = 6 << 30  # activations/workspace head-room kept free when deciding placement


@dataclass(frozen=True)
class GpuOptions:
    """Memory options of the production (GPU) path."""

    group_offload: bool = False  # diffusers enable_group_offload (block level, with streams)
    fp8_layerwise: bool = False  # diffusers enable_layerwise_casting (fp8 storage, bf16 compute)
    vae_tiling: bool = True
    keep_both_experts: bool | None = None  # None: keep both on the GPU only if they fit
    prefetch: bool = True  # overlap the idle expert's upload with compute (CUDA streams)


def _module_bytes(m: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in [*m.parameters(), *m.buffers()])


class _Swappable:
    """A module with pinned CPU master weights, uploaded group by group on a side stream."""

    def __init__(self, name: str, module: torch.nn.Module, device: torch.device) -> None:
        self.name, self.module, self.device = name, module, device
        self.on_gpu = False
        self._events: dict[int, torch.cuda.Event] = {}
        module.to("cpu")
        self.tensors: list[tuple[torch.nn.Module, str, bool, torch.Tensor]] = []
        for mod in module.modules():
            for pname, p in list(mod._parameters.items()):
                if p is not None:
                    pinned = p.data.pin_memory()
                    p.data = pinned
                    self.tensors.append((mod, pname, True, pinned))
            for bname, b in list(mod._buffers.items()):
                if b is not None:
                    pinned = b.pin_memory()
                    mod._buffers[bname] = pinned
                    self.tensors.append((mod, bname, False, pinned))
        # Upload groups in forward order: root tensors and embeddings, each block, the head.
        blocks = getattr(module, "blocks", None)
        if blocks is None:
            blocks = getattr(getattr(module, "encoder", None), "block", None)
        n_blocks = len(blocks) if blocks is not None else 0
        last = n_blocks + 1
        owner: dict[int, int] = {}
        for child in module.children():
            if blocks is not None and child is blocks:
                continue
            gi = 0 if _is_embedding(child) else last
            for sub in child.modules():
                owner[id(sub)] = gi
            if gi == last:
                child.register_forward_pre_hook(self._waiter(last))
        if blocks is not None:
            for gi, blk in enumerate(blocks, start=1):
                for sub in blk.modules():
                    owner[id(sub)] = gi
                blk.register_forward_pre_hook(self._waiter(gi))
        self.groups: list[list[int]] = [[] for _ in range(last + 1)]
        for i, (mod, _n, _is_p, _t) in enumerate(self.tensors):
            self.groups[owner.get(id(mod), 0)].append(i)
        module.register_forward_pre_hook(self._waiter(0))

    def _waiter(self, gi: int):
        def hook(_m, _a):
            ev = self._events.pop(gi, None)
            if ev is not None:
                torch.cuda.current_stream(self.device).wait_event(ev)
            if gi == 0 and not self.on_gpu:
                raise RuntimeError(f"{self.name} used before upload")

        return hook

    def upload(self, stream: torch.cuda.Stream | None) -> None:
        if self.on_gpu:
            return
        main = torch.cuda.current_stream(self.device)
        ctx = torch.cuda.stream(stream) if stream is not None else torch.cuda.stream(main)
        with ctx:
            for gi, idxs in enumerate(self.groups):
                for i in idxs:
                    mod, name, is_p, cpu = self.tensors[i]
                    gpu = cpu.to(self.device, non_blocking=True)
                    if stream is not None:
                        gpu.record_stream(main)
                    if is_p:
                        mod._parameters[name].data = gpu
                    else:
                        mod._buffers[name] = gpu
                if stream is not None:
                    ev = torch.cuda.Event()
                    ev.record(stream)
                    self._events[gi] = ev
        self.on_gpu = True

    def evict(self) -> None:
        if not self.on_gpu:
            return
        for mod, name, is_p, cpu in self.tensors:
            if is_p:
                mod._parameters[name].data = cpu
            else:
                mod._buffers[name] = cpu
        self._events.clear()
        self.on_gpu = False


def _is_embedding(m: torch.nn.Module) -> bool:
    n = type(m).__name__.lower()
    return "embed" in n or "rotary" in n or "rope" in n or isinstance(m, torch.nn.Conv3d)


class _ExecutionDevice:
    def __init__(self, device: torch.device) -> None:
        self.execution_device = device


class GpuPlacement:
    def __init__(self, pipe, device: str, opts: GpuOptions) -> None:
        self.pipe = pipe
        self.device = torch.device(device)
        self.opts = opts
        self.mode = "resident"
        self.uploads = 0
        self.stream = torch.cuda.Stream(self.device) if opts.prefetch else None
        if opts.fp8_layerwise:
            for t in (pipe.transformer, pipe.transformer_2):
                t.enable_layerwise_casting(
                    storage_dtype=torch.float8_e4m3fn, compute_dtype=torch.bfloat16
                )
        if opts.vae_tiling:
            pipe.vae.enable_tiling()
        if opts.group_offload:
            from diffusers.hooks import apply_group_offloading

            self.mode = "group_offload"
            for name in ("transformer", "transformer_2"):
                apply_group_offloading(
                    getattr(pipe, name),
                    onload_device=self.device,
                    offload_type="block_level",
                    num_blocks_per_group=1,
                    use_stream=True,
                )
            # UMT5's blocks are nested (encoder.block): leaf level streams them layer by layer
            apply_group_offloading(
                pipe.text_encoder,
                onload_device=self.device,
                offload_type="leaf_level",
                use_stream=True,
            )
            pipe.vae.to(self.device)
            return
        sizes = {
            n: _module_bytes(getattr(pipe, n))
            for n in ("text_encoder", "transformer", "transformer_2", "vae")
        }
        free, _total = torch.cuda.mem_get_info(self.device)
        keep_both = opts.keep_both_experts
        if keep_both is None:
            keep_both = sum(sizes.values()) + MARGIN_BYTES < free
        if keep_both:
            pipe.to(self.device)
            return
        self.mode = "swap"
        pipe.vae.to(self.device)
        self.sw = {
            n: _Swappable(n, getattr(pipe, n), self.device)
            for n in ("text_encoder", "transformer", "transformer_2")
        }
        for n, s in self.sw.items():
            s.module.register_forward_pre_hook(self._ensure(n), prepend=True)
            # Tell diffusers where inputs must go although the weights may sit on the CPU
            # (what accelerate's offload hooks do; read by get_module_execution_device and
            # DiffusionPipeline._execution_device).
            s.module._hf_hook = _ExecutionDevice(self.device)

    # -- swap mode ---------------------------------------------------------------------
    def _ensure(self, name: str):
        def hook(_m, _a):
            s = self.sw[name]
            if s.on_gpu:
                return
            for other in self.sw.values():
                if other is not s:
                    other.evict()
            s.upload(self.stream)
            self.uploads += 1

        return hook

    def on_step_end(self, pipe, i: int) -> None:
        """Upload the low-noise expert before the switch, hidden behind compute if possible.

        After the second-to-last high-noise step: if there is room for both experts, start
        the async upload now (it overlaps the last high-noise step). After the last
        high-noise step: evict the high-noise expert (free: pinned CPU copy) and start the
        upload; the first low-noise step then waits block by block, not for the whole model.
        """
        if self.mode != "swap":
            return
        ts = pipe.scheduler.timesteps
        b = pipe.config.boundary_ratio * pipe.scheduler.config.num_train_timesteps
        lo, hi, te = self.sw["transformer_2"], self.sw["transformer"], self.sw["text_encoder"]
        if lo.on_gpu:
            return
        if i + 1 < len(ts) and ts[i] >= b > ts[i + 1]:
            te.evict()
            hi.evict()
            lo.upload(self.stream)
            self.uploads += 1
        elif i + 2 < len(ts) and ts[i + 1] >= b > ts[i + 2]:
            te.evict()
            free, _ = torch.cuda.mem_get_info(self.device)
            if free > _module_bytes(lo.module) + MARGIN_BYTES:
                lo.upload(self.stream)
                self.uploads += 1

    def reset_after_oom(self) -> None:
        if self.mode == "swap":
            for s in self.sw.values():
                s.evict()
        torch.cuda.empty_cache()


def place_on_gpu(pipe, device: str, opts: GpuOptions) -> GpuPlacement:
    return GpuPlacement(pipe, device, opts)
