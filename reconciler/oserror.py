"""OSError in words, for messages a person reads: no ``[Errno N]``, no repeated path.
Its own module so that the state store can use it without importing YAML."""

from __future__ import annotations

import errno


def os_reason(e: OSError) -> str:
    """An OSError in words, without ``[Errno N]`` and without repeating the path."""
    words = {
        errno.EACCES: "permission denied", errno.EPERM: "permission denied", errno.ENOENT: "does not exist",
        errno.ENOTDIR: "a parent of it is not a directory", errno.EISDIR: "is a directory",
        errno.ELOOP: "too many levels of symbolic links", errno.EROFS: "read-only file system",
        errno.ENOSPC: "no space left on the device", errno.EEXIST: "already exists",
        errno.ENAMETOOLONG: "the name is too long", errno.ECONNREFUSED: "connection refused",
        errno.ECONNRESET: "connection reset", errno.ETIMEDOUT: "timed out",
    }
    return words.get(e.errno or 0) or (e.strerror or type(e).__name__).lower()
