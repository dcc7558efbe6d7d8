"""More than one process: joining torchrun's process group, and the few collectives vaekit uses.

``torchrun --nproc-per-node N -m vaekit train ...`` starts N processes with ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK`` and a rendezvous address in their environment. Each joins
one process group (gloo for CPU tensors, NCCL for GPU tensors where CUDA is available) and
PyTorch's DistributedDataParallel averages the gradients; rank 0 alone writes files and
prints progress.

Every collective waits at most ``timeout`` seconds, so a rank that dies or hangs ends the
others with one clear error instead of a job that never finishes.
"""
from __future__ import annotations

import atexit
import os
import re
from dataclasses import dataclass
from datetime import timedelta

from .errors import VaekitError, render

DEFAULT_TIMEOUT = 300.0  # seconds a collective (or the start-up rendezvous) may wait for the other ranks
_joined = False  # whether vaekit itself initialised the process group (and so must destroy it)
# How to go on after a failure now ("; RUN keeps epoch 3: continue with --resume RUN"), kept up to
# date by the trainer for the one message that cannot ask it: the SIGTERM handler's.
resume_hint = ""


class PeerError(VaekitError):
    """Another rank failed and has said why; this rank exits quietly with the same status."""


def stop_on_sigterm(command: str) -> None:
    """A SIGTERM ends this process at once with one line that says how to go on: under a
    launcher (torchrun ends every rank when one fails) with status 2, as one failure among the
    ranks; otherwise (``kill``, a scheduler's time limit, ``docker stop``) with 143, as a
    terminated process. Unwinding would only add the errors of workers the same signal
    stopped. Files are written atomically, so none is left half-written (at most a hidden
    temporary file beside it, which the next writer of the run clears)."""
    import signal
    import sys

    main, under_launcher = os.getpid(), launched()

    def stopped(signum, frame):
        if os.getpid() == main:  # forked DataLoader workers inherit the handler: they end quietly
            why = ("stopped by the launcher (SIGTERM), most likely because another process failed (see its error)"
                   if under_launcher else "stopped (SIGTERM)")
            sys.stderr.write(f"vaekit {command}: error: {why}"
                             f"{render(resume_hint, command_line=True) or '; nothing was lost'}\n")
            sys.stderr.flush()
        os._exit(2 if under_launcher else 128 + signal.SIGTERM)

    try:
        signal.signal(signal.SIGTERM, stopped)
    except ValueError:  # not the main thread (main() called from a thread): signals stay as they are
        pass


def ignore_sigterm() -> None:
    """Once a process is ending with its own error, a launcher's SIGTERM has nothing to add;
    outside a launcher, SIGTERM gets its default meaning back (main() may be called again)."""
    import signal

    try:
        signal.signal(signal.SIGTERM, signal.SIG_IGN if launched() else signal.SIG_DFL)
    except ValueError:  # not the main thread
        pass


@dataclass(frozen=True)
class World:
    """Where this process stands among the processes of one job."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def __str__(self) -> str:
        return f"rank {self.rank} of {self.size}"

    def part(self, n: int) -> range:
        """This rank's contiguous share of ``n`` rows (all of them in a single process)."""
        return range(n * self.rank // self.size, n * (self.rank + 1) // self.size)

    # -- collectives (no-ops in a single process) --------------------------------------------
    def all_reduce(self, tensor, op: str = "sum"):
        """Reduce ``tensor`` over all ranks in place (sum or max) and return it."""
        if self.size > 1:
            import torch.distributed as dist

            with lost_contact(self):
                dist.all_reduce(tensor, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX)
        return tensor

    def all_gather(self, obj) -> list:
        """Every rank's ``obj`` (picklable), in rank order."""
        if self.size == 1:
            return [obj]
        import torch.distributed as dist

        out = [None] * self.size
        with lost_contact(self):
            dist.all_gather_object(out, obj)
        return out

    def broadcast(self, obj):
        """Rank 0's ``obj`` on every rank."""
        if self.size == 1:
            return obj
        import torch.distributed as dist

        box = [obj]
        with lost_contact(self):
            dist.broadcast_object_list(box, src=0)
        return box[0]

    def on_main(self, fn):
        """``fn()`` run on rank 0 and its result shared with every rank; an error there is raised
        on rank 0 and, as a quiet :class:`PeerError`, on the others."""
        if self.size == 1:
            return fn()
        result, error = None, None
        if self.is_main:
            try:
                result = fn()
            except Exception as e:  # the others must hear of it, or they would wait for rank 0 forever
                error = e
        sent = self.broadcast(("error", str(error)) if error is not None else ("ok", result))
        if error is not None:
            raise error
        if sent[0] == "error":
            raise PeerError(sent[1])
        return sent[1]

    def agree(self, fn):
        """``fn()`` run on every rank; if it fails on any, each rank raises (the rank that
        failed with its own message, the others quietly)."""
        if self.size == 1:
            return fn()
        result, error = None, None
        try:
            result = fn()
        except Exception as e:
            error = e
        failures = [m for m in self.all_gather(None if error is None else str(error)) if m is not None]
        if error is not None:
            raise error
        if failures:
            raise PeerError(failures[0])
        return result


SINGLE = World()


def launched() -> bool:
    """Whether torchrun (or another launcher) started this process as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def current() -> World:
    """This process's place in the job: the process group's, or a single process."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return SINGLE
    env = os.environ
    return World(rank=dist.get_rank(), size=dist.get_world_size(),
                 local_rank=int(env.get("LOCAL_RANK", 0)), local_size=int(env.get("LOCAL_WORLD_SIZE", 1)))


def join(timeout: float = DEFAULT_TIMEOUT) -> World:
    """Join the launcher's process group (once). Collectives on CPU tensors go through gloo and,
    where CUDA is available, those on GPU tensors (DDP's gradients) through NCCL. A single
    process stays single; a group the caller made is used as it is."""
    global _joined
    import torch
    import torch.distributed as dist

    if not launched() or dist.is_initialized():
        return current()
    if not dist.is_available():
        raise VaekitError("this PyTorch build has no torch.distributed; run vaekit as a single process")
    backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() and dist.is_nccl_available() else "gloo"
    try:
        dist.init_process_group(backend, timeout=timedelta(seconds=timeout))
    except (RuntimeError, ValueError) as e:
        raise VaekitError(f"could not join the other processes at {os.environ.get('MASTER_ADDR', '?')}:"
                          f"{os.environ.get('MASTER_PORT', '?')} within {timeout:.0f} s ({_first_line(e)}); check "
                          "that every node was started with the same --rdzv-endpoint and --nnodes") from None
    _joined = True
    # A script that trains through the API and just ends never calls leave(): destroy the group
    # while the interpreter is still whole. Left to the interpreter's teardown, gloo's worker
    # threads can still hold tensors then, and the process aborts (SIGABRT) after a run that worked.
    atexit.register(leave)
    return current()


def leave() -> None:
    """Destroy the process group if vaekit made it."""
    global _joined
    if _joined:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
        _joined = False


def device_for(device, world: World):
    """Each rank's own GPU: ``cuda:LOCAL_RANK``; the CPU as it is."""
    import torch

    if world.size == 1:
        return device
    if device.type == "mps":
        raise VaekitError("several processes cannot share Apple's MPS device; use --device cpu under torchrun")
    if device.type == "cuda":
        if world.local_rank >= torch.cuda.device_count():
            raise VaekitError(f"{world} is local rank {world.local_rank}, but this machine has "
                              f"{torch.cuda.device_count()} GPU(s); start at most that many processes per node")
        torch.cuda.set_device(world.local_rank)
        return torch.device("cuda", world.local_rank)
    return device


class lost_contact:
    """Turns a failed collective into one clear error: another rank died, hung, or was stopped
    (with :data:`resume_hint`, how to go on)."""

    def __init__(self, world: World):
        self.world = world

    def __enter__(self):
        return self

    def __exit__(self, kind, error, tb):
        if kind is not None and issubclass(kind, RuntimeError) and self.world.size > 1:
            raise VaekitError(f"{self.world}: lost contact with the other processes ({_first_line(error)}); "
                              "another rank failed or was stopped (see its error), or did not answer within the "
                              f"timeout{resume_hint}") from None
        return False


def _first_line(e: BaseException) -> str:
    """The gist of a backend's error: its first sentence, without the C++ source location."""
    text = re.sub(r"^\[[^\]]*\]\s*", "", str(e).strip())  # gloo: "[/path/pair.cc:553] Connection closed..."
    text = text.splitlines()[0] if text else type(e).__name__
    return text.split(". ")[0][:160]
