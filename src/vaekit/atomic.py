"""Write a file so that readers see the old version or the new one, never half of one."""
from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path

# Writers that fail on a full disk do not all say so: torch.save raises RuntimeError
# ("unexpected pos ..."), safetensors its own error type. Below this much free space, a
# failed write is taken to be the disk's fault.
FULL_DISK_BYTES = 1 << 20


def atomic_write(path: str | os.PathLike, write) -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it into place.

    The temporary name keeps ``path``'s suffix, since some writers (``np.save``) add one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~umask())  # mkstemp makes 0600 (and some writers recreate the file)
        os.replace(tmp, path)
    except BaseException as e:
        full = isinstance(e, Exception) and disk_full(e, path.parent)
        Path(tmp).unlink(missing_ok=True)
        if full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from None
        raise
    return path


def disk_full(error: Exception, folder: Path) -> bool:
    """Whether ``error``, raised while writing into ``folder``, came from a full disk."""
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if "No space left" in str(error):
        return True
    try:
        return shutil.disk_usage(folder).free < FULL_DISK_BYTES
    except OSError:
        return False


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
