"""Print `export` lines with free loopback ports for a test stack.

CI runs on a machine that may still hold another stack on the default test ports; picking
free ones keeps the run independent of whatever was left behind.
"""

from __future__ import annotations

import socket


def is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_block(start: int, size: int, avoid: set[int] = frozenset()) -> int:
    """The first port >= start such that it and the next size-1 ports are free."""
    port = start
    while port + size < 65000:
        block = range(port, port + size)
        if not avoid.intersection(block) and all(is_free(p) for p in block):
            return port
        port += size
    raise RuntimeError(f"no {size} free consecutive ports above {start}")


if __name__ == "__main__":
    pg = free_block(25432, 1)
    s3 = free_block(28333, 10)
    prefect = free_block(24200, 1)
    print(f"export REELFORGE_PG_PORT={pg} REELFORGE_S3_PORT={s3} REELFORGE_PREFECT_PORT={prefect}")
