"""Reading the small files the environment points at, safely: config, ``*_FILE`` secrets, CA bundles, state.

A path in the environment or the config directory can name anything: a
FIFO nobody writes to (``open`` blocks for ever), ``/dev/zero`` or a link to
it (``read`` fills memory), a directory, a terminal. :func:`read_regular`
opens without blocking, reads only regular files and at most ``limit``
bytes, so no such file can hang a run past its deadline or exhaust memory.
Anything else is one :class:`~cancelctl.errors.ConfigError` line (exit 78)
that names the file and never its content.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager

from cancelctl.errors import ConfigError

SMALL_FILE_LIMIT = 1 << 20  # bytes: config files and secrets are a few hundred bytes
CA_FILE_LIMIT = 16 << 20  # bytes: a CA bundle is about 200 KB
STATE_FILE_LIMIT = 4096  # bytes: a nonce counter or a pacing bucket is a few dozen


@contextmanager
def opened_regular(
    path: str | os.PathLike[str], what: str, *, limit: int | None = SMALL_FILE_LIMIT, hint: str | None = None
) -> Iterator[int]:
    """A descriptor of ``path``, a regular file (symlinks to one are followed) of at most ``limit`` bytes (None: any
    size, for a caller that reads only part of it); closed on exit.

    Raises FileNotFoundError when it does not exist (callers decide whether
    that is an error), ConfigError (78) when it is not a regular file
    (FIFO, device, socket, directory), is larger than ``limit``, or cannot
    be opened or read (an OSError inside the block too). Never blocks:
    opened with ``O_NONBLOCK``, checked with ``fstat`` before anything
    reads it.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise
    except OSError as e:
        raise ConfigError(f"cannot read {what}: {e.strerror or type(e).__name__}", hint=hint) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"{what} is not a regular file ({_kind(st.st_mode)})", hint=hint)
        if limit is not None and st.st_size > limit:
            raise ConfigError(f"{what} is larger than {limit} bytes", hint=hint)
        yield fd
    except OSError as e:
        raise ConfigError(f"cannot read {what}: {e.strerror or type(e).__name__}", hint=hint) from None
    finally:
        os.close(fd)


def read_regular(
    path: str | os.PathLike[str], what: str, *, limit: int = SMALL_FILE_LIMIT, hint: str | None = None
) -> bytes:
    """The bytes of ``path``, checked as :func:`opened_regular` checks it, read up to ``limit`` bytes.

    ``what`` names the file in the error (e.g. ``$CANCELCTL_MAIN_API_KEY_FILE (/run/x)``).
    Raises FileNotFoundError when it does not exist, ConfigError (78) as
    :func:`opened_regular` does, or when it grows past ``limit`` while read.
    """
    with opened_regular(path, what, limit=limit, hint=hint) as fd:
        chunks, size = [], 0
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            size += len(chunk)
            if size > limit:  # grew while we read it
                raise ConfigError(f"{what} is larger than {limit} bytes", hint=hint)
            chunks.append(chunk)
        return b"".join(chunks)


def read_text(
    path: str | os.PathLike[str], what: str, *, limit: int = SMALL_FILE_LIMIT, hint: str | None = None
) -> str:
    """:func:`read_regular` decoded as UTF-8; ConfigError (78) when it is not UTF-8 text."""
    try:
        return read_regular(path, what, limit=limit, hint=hint).decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{what} is not UTF-8 text", hint=hint) from None


STATE_FILE_WIDTH = 64  # bytes every state file written by :func:`overwrite` is padded to (with blanks)


def overwrite(path: str | os.PathLike[str], text: str) -> None:
    """Make ``text`` (ASCII, at most :data:`STATE_FILE_WIDTH` bytes; blanks pad it to that width, which every
    reader strips) the whole content of the small state file at ``path``. Raises OSError.

    For the files a key's requests update under the key's lock (the nonce
    counter, the pacing bucket). A regular file is written in place with one
    ``pwrite`` of the full width, so a process killed at any point leaves the
    old content or the new, never a mix, and no reader (they read under the
    same lock) sees a partial one. Anything else at ``path`` (nothing yet, a
    FIFO, a symlink, a directory) is replaced through a temporary file and a
    rename, as every write was before: on ext4 a rename over an existing file
    starts its write-back, 0.1 to 0.5 ms a rename measured on the development
    machine, twice before every Gemini request (docs/performance.md, "The guard").
    A write that comes back short (a file-size limit below the width) puts the
    old bytes back and raises OSError (EFBIG): the caller says so, and no
    counter is ever left truncated or half new.
    """
    data = text.encode("ascii").ljust(STATE_FILE_WIDTH)
    flags = os.O_RDWR | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError:  # not there yet, a symlink (ELOOP), a directory, no permission: written anew (a FIFO: below)
        fd = -1
    if fd >= 0:
        try:
            st = os.fstat(fd)
            if stat.S_ISREG(st.st_mode):
                before = os.pread(fd, len(data), 0)
                written = os.pwrite(fd, data, 0)
                if written == len(data):
                    if st.st_size > len(data):
                        os.ftruncate(fd, len(data))
                    return
                # A short write (a file-size limit below the width): the old bytes back rather than a mix of old and
                # new (a nonce counter lower than the nonce just sent), and an error the caller reports.
                os.pwrite(fd, before[:written], 0)
                if st.st_size < written:
                    os.ftruncate(fd, st.st_size)
                raise OSError(errno.EFBIG, f"short write ({written} of {len(data)} bytes)", os.fspath(path))
        finally:
            os.close(fd)
    tmp = f"{os.fspath(path)}.tmp"  # one name per file: writers hold the key's lock, a leftover is reused
    fd = _open_temporary(tmp)
    try:
        written = os.write(fd, data)
    finally:
        os.close(fd)
    if written != len(data):  # never a truncated file renamed over a whole one
        os.unlink(tmp)
        raise OSError(errno.EFBIG, f"short write ({written} of {len(data)} bytes)", tmp)
    os.replace(tmp, path)


def _open_temporary(tmp: str) -> int:
    """A new regular file at ``tmp`` opened for writing, whatever was there: a leftover regular file is reused
    (truncated); anything else (a FIFO, which ``open`` would wait on for a reader for ever; a symlink, which it
    would follow) is removed first, never opened. Raises OSError."""
    nofollow = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NONBLOCK | nofollow, 0o600)
    except OSError:  # a symlink (ELOOP), a FIFO without a reader (ENXIO), a directory (EISDIR)
        fd = -1
    if fd >= 0:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            return fd
        os.close(fd)  # a FIFO with a reader, a device
    os.unlink(tmp)  # a directory: IsADirectoryError, the caller's to report
    return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | nofollow, 0o600)


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a plain file"
