"""Files a user hands us are untrusted input: read them safely or refuse them clearly.

Only regular files are read: a FIFO, a device (``/dev/zero``) or a directory is refused
from its ``os.stat`` before it is opened (reading a FIFO would block forever, a device
would never end). Files are read whole only up to a stated size, and JSON only up to a
stated nesting depth and integer length (deeper or longer input crashed the parser or
later arithmetic). Every refusal is a ``ValueError`` that starts with the argument's name
(``what``) and names the file. Inside a result folder, :func:`check_inside` refuses
symbolic links that lead out of the folder.

Only the standard library and numpy here: the command line's ``--help`` imports this.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any, BinaryIO, TypeAlias

import numpy as np

#: A file name: a string or a path object.
StrPath: TypeAlias = "str | os.PathLike[str]"

#: JSON nested deeper than this is refused (our files nest 5 levels at most).
MAX_JSON_DEPTH = 32
#: JSON integers with more digits than this are refused (int64 has 19).
MAX_INT_DIGITS = 20
#: Characters scanned per step when measuring the nesting depth (bounds temporary memory).
_DEPTH_CHUNK = 2**22
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)


def _kind_of(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def _refuse_irregular(info: os.stat_result, path: StrPath, what: str) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(
            f"{what}: {path}: {_kind_of(info.st_mode)}, not a regular file; it is not read."
        )


def regular_file(path: StrPath, what: str, max_bytes: int | None = None) -> os.stat_result:
    """``os.stat`` of ``path`` after checking it is a regular file of at most ``max_bytes``.

    Symbolic links are followed (a link the user names is what they mean); nothing is
    opened, so a FIFO or device is refused without side effects."""
    try:
        info = os.stat(path)
    except OSError as error:
        raise ValueError(f"{what}: {path}: cannot read it: {error.strerror or error}.") from None
    _refuse_irregular(info, path, what)
    _refuse_large(info.st_size, path, what, max_bytes)
    return info


def _refuse_large(size: int, path: StrPath, what: str, max_bytes: int | None) -> None:
    if max_bytes is not None and size > max_bytes:
        raise ValueError(
            f"{what}: {path}: {size / 2**20:.1f} MB; files over "
            f"{max_bytes / 2**20:g} MB are not read."
        )


def open_regular(path: StrPath, what: str, max_bytes: int | None = None) -> BinaryIO:
    """``path`` opened for binary reading, only if it is a regular file (see
    :func:`regular_file`). Opened with ``O_NONBLOCK`` and checked again on the open file,
    so a FIFO swapped in after the first check cannot block either."""
    regular_file(path, what, max_bytes)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        descriptor = os.open(path, flags)
    except OSError as error:
        raise ValueError(f"{what}: {path}: cannot read it: {error.strerror or error}.") from None
    try:
        info = os.fstat(descriptor)
        _refuse_irregular(info, path, what)
        _refuse_large(info.st_size, path, what, max_bytes)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def read_bytes(path: StrPath, what: str, max_bytes: int) -> bytes:
    """The whole content of a regular file of at most ``max_bytes``."""
    with open_regular(path, what, max_bytes) as handle:
        try:
            content = handle.read(max_bytes + 1)
        except OSError as error:
            raise ValueError(
                f"{what}: {path}: cannot read it: {error.strerror or error}."
            ) from None
    _refuse_large(len(content), path, what, max_bytes)  # it grew while we read it
    return content


def read_text(path: StrPath, what: str, max_bytes: int) -> str:
    """A regular UTF-8 text file of at most ``max_bytes``."""
    try:
        return read_bytes(path, what, max_bytes).decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{what}: {path}: not UTF-8 text (byte {error.start}).") from None


class _IntegerTooLong(Exception):
    pass


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _IntegerTooLong(text)
    return int(text)


def json_depth(text: str) -> int:
    """Deepest nesting of ``[`` and ``{`` in JSON text (brackets inside strings ignored).

    For text that is not valid JSON the count is at least what a parser reaches before
    it stops, so checking it first keeps the parser's recursion bounded."""
    outside_strings = _JSON_STRING.sub('""', text).encode("utf-8", "replace")
    deepest = level = 0
    for start in range(0, len(outside_strings), _DEPTH_CHUNK):
        chunk = np.frombuffer(
            outside_strings,
            np.uint8,
            offset=start,
            count=min(_DEPTH_CHUNK, len(outside_strings) - start),
        )
        steps = np.isin(chunk, (ord("["), ord("{"))).astype(np.int32) - np.isin(
            chunk, (ord("]"), ord("}"))
        )
        if len(steps):
            levels = np.cumsum(steps) + level
            deepest, level = max(deepest, int(levels.max())), int(levels[-1])
    return deepest


def parse_json(text: str, path: StrPath, what: str) -> Any:
    """JSON text -> Python objects, refusing deep nesting and over-long integers."""
    depth = json_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise ValueError(
            f"{what}: {path}: nests {depth} levels deep; at most {MAX_JSON_DEPTH} are read."
        )
    try:
        return json.loads(text, parse_int=_bounded_int)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{what}: {path}: not valid JSON ({error.msg}, line "
            f"{error.lineno}, column {error.colno})."
        ) from None
    except _IntegerTooLong as error:
        raise ValueError(
            f"{what}: {path}: holds an integer of {len(str(error))} digits; at "
            f"most {MAX_INT_DIGITS} are read."
        ) from None
    except RecursionError:
        raise ValueError(f"{what}: {path}: nests too deeply to be read.") from None


def read_json(path: StrPath, what: str, max_bytes: int) -> Any:
    """A regular JSON file of at most ``max_bytes``, parsed (see :func:`parse_json`)."""
    return parse_json(read_text(path, what, max_bytes), path, what)


def check_inside(path: Path, root: Path, what: str) -> Path:
    """``path`` itself if it does not lead out of the folder ``root`` (resolved).

    A symbolic link that points outside ``root`` is refused, never followed."""
    real = Path(os.path.realpath(path))
    if real != root and root not in real.parents:
        raise ValueError(
            f"{what}: {path}: a symbolic link to {real}, outside the folder; it is not followed."
        )
    return path


def check_tree_inside(top: Path, root: Path, what: str) -> None:
    """Every entry under the directory ``top`` stays inside ``root`` and is a regular
    file or a directory (a zarr store: links out, FIFOs and devices are refused)."""
    check_inside(top, root, what)
    for directory, subdirectories, files in os.walk(top):
        for name in (*subdirectories, *files):
            entry = Path(directory, name)
            check_inside(entry, root, what)
            try:
                mode = os.stat(entry).st_mode
            except OSError as error:
                raise ValueError(
                    f"{what}: {entry}: cannot read it: {error.strerror or error}."
                ) from None
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise ValueError(
                    f"{what}: {entry}: {_kind_of(mode)}, not a regular file; it is not read."
                )
