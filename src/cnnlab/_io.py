"""Files: writes that never leave a half-written file, and paths checked before any work is done.

Every write goes to a temporary file in the same folder, is flushed to disk and then renamed over the
target (``os.replace`` is atomic), so a crash, a kill or a full disk leaves the previous file intact. Files
get the permissions any new file gets (``0666`` less the umask), not the ``0600`` of a temporary file.

A leaf module: it imports nothing from cnnlab but its errors, so every layer can use it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import CnnlabError


def _umask() -> int:
    mask = os.umask(0)  # the only way to read it is to set it
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Write ``path`` through ``write(temporary_path)``, then rename it into place; a failure (or a kill)
    leaves the previous file as it was. An operating-system error (disk full, no permission) is one
    :class:`CnnlabError` line naming the file."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # after writing: a writer may replace the file with its own
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        _remove(tmp)
        raise CnnlabError(f"cannot write '{path}': {e.strerror or e}") from None
    except Exception:
        # torch.save and safetensors report a full disk as their own errors (RuntimeError "unexpected pos",
        # SafetensorError): judged by the space left while the partial file still takes it
        full = _nearly_full(path.parent)
        _remove(tmp)
        if full:
            raise CnnlabError(f"cannot write '{path}': no space left on the device (the previous file, if any, "
                              f"is as it was); free some and run the command again") from None
        raise
    except BaseException:
        _remove(tmp)
        raise


def _nearly_full(folder: Path) -> bool:
    """Whether the file system of ``folder`` has less than 1 MiB free (where the size can be read)."""
    try:
        return shutil.disk_usage(folder).free < 2**20
    except OSError:
        return False


def _remove(tmp: str | None) -> None:
    if tmp is not None and os.path.exists(tmp):
        os.unlink(tmp)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)

    atomic_write(path, write)


def atomic_write_json(path: str | os.PathLike, value: Any) -> None:
    atomic_write_text(path, json.dumps(value, indent=2) + "\n")


def read_json_object(path: str | os.PathLike, damaged: str) -> dict:
    """The JSON object in ``path`` ({} where there is no such file). A file that is not valid JSON, or holds
    something other than an object (a list, a number), is refused in one line that ends in ``damaged``: what
    that means for the directory it is in, and what to do."""
    path = Path(path)
    if not path.is_file():
        return {}
    try:
        text = path.read_bytes()
    except OSError as e:
        raise CnnlabError(f"'{path}' cannot be read ({e.strerror}); {damaged}") from None
    try:
        value = json.loads(text)
    except ValueError:  # UnicodeDecodeError included
        raise CnnlabError(f"'{path}' is not valid JSON; {damaged}") from None
    if not isinstance(value, dict):
        what = "null" if value is None else "true or false" if isinstance(value, bool) else \
            {list: "an array", str: "a string"}.get(type(value), "a number")  # JSON's words, not Python's
        raise CnnlabError(f"'{path}' holds {what}, not a JSON object; {damaged}")
    return value


def atomic_link(source: str | os.PathLike, path: str | os.PathLike) -> None:
    """Make ``path`` the same file as ``source`` (a hard link: no bytes copied), atomically; a copy where the
    file system has no hard links."""
    path = Path(path)

    def write(tmp: str) -> None:
        os.unlink(tmp)
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)

    atomic_write(path, write)


_unused: list[Path] = []  # directories make_dir created for a command's output (see removed_if_unused)


def make_dir(path: str | os.PathLike, what: str, option: str | None = None, output: bool = False) -> Path:
    """Create the directory ``path`` (and its parents) if needed and check it is writable; a path that is a
    file, lies inside a file or cannot be written is one line naming ``what`` and the ``option`` to change.
    ``output``: a folder a command writes its results into; what this call created is removed again, if still
    empty, when the command fails (:func:`removed_if_unused`)."""
    fix = f"; choose another {option}" if option else ""
    if not str(path).strip():
        raise CnnlabError(f"{what} is an empty path" + (f"; give one with {option}" if option else ""))
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise CnnlabError(f"{what} '{path}' is a file, not a directory{fix}")
    missing = [p for p in (path, *path.parents) if not p.exists()]  # innermost first
    try:
        path.mkdir(parents=True, exist_ok=True)
        if output:
            _unused.extend(missing)
    except (FileExistsError, NotADirectoryError):
        blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), path.parent)
        raise CnnlabError(f"{what} '{path}' cannot be created: '{blocker}' is a file{fix}") from None
    except PermissionError:
        raise CnnlabError(f"{what} '{path}' cannot be created: permission denied{fix}") from None
    except OSError as e:
        raise CnnlabError(f"{what} '{path}' cannot be created: {e.strerror or e}{fix}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise CnnlabError(f"{what} '{path}' is not writable{fix}")
    return path


@contextlib.contextmanager
def removed_if_unused():
    """Around a command: the output folders it created (``make_dir(..., output=True)``) go again, if still empty,
    when it fails (a refused image, a missing package), so that a failed command leaves nothing behind."""
    start = len(_unused)
    try:
        yield
    except BaseException:
        for folder in _unused[start:]:  # innermost first: a parent made empty by its child's removal goes too
            with contextlib.suppress(OSError):
                folder.rmdir()  # only an empty one
        raise
    finally:
        del _unused[start:]


def existing_file(path: str | os.PathLike, what: str) -> Path:
    """``path`` as a Path if it is an existing file; else one line saying it is missing or a directory."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise not_a_file(path, what)
    return p


def not_a_file(path: str | os.PathLike, what: str) -> CnnlabError:
    """The one line for ``path``, which is not a regular file: a directory, something else that exists (a pipe,
    a device: "does not exist" would send the user looking for a file that is there), or nothing."""
    p = Path(path).expanduser()
    if p.is_dir():
        return CnnlabError(f"{what} '{path}' is a directory, not a file")
    if p.exists():
        return CnnlabError(f"{what} '{path}' is not a regular file (a pipe, socket or device); give a file")
    return CnnlabError(f"{what} '{path}' does not exist")


def existing_dir(path: str | os.PathLike, what: str) -> Path:
    """``path`` as a Path if it is an existing directory; else one line saying it is missing or a file."""
    p = Path(path).expanduser()
    if not p.exists():
        raise CnnlabError(f"{what} '{path}' does not exist")
    if not p.is_dir():
        raise CnnlabError(f"{what} '{path}' is a file, not a directory")
    return p


def absolute_path(text: str) -> str:
    """``text`` as an absolute path where it names an existing file or folder relatively or from ``~``
    (``imgs`` -> ``/home/me/imgs``), else as written: a run's or an experiment's saved settings then find it from
    any working directory, and a path that does not exist is left for its reader to refuse in the user's words."""
    path = Path(text)
    return str(path.expanduser().resolve()) if not path.is_absolute() and path.expanduser().exists() else text
