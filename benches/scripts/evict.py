#!/usr/bin/env python3
"""Evicts the files under each given directory from the page cache
(posix_fadvise DONTNEED after fsync), so the next read comes from disk: the
"cold" runs of benches/compare.sh. Only these files: other processes on the
machine keep their cache (unlike /proc/sys/vm/drop_caches).

Usage: evict.py DIR..."""
import os
import sys


def evict(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return 0
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        return 1
    except OSError:
        return 0
    finally:
        os.close(fd)


def main():
    n = 0
    for top in sys.argv[1:]:
        for root, _dirs, files in os.walk(top):
            for name in files:
                n += evict(os.path.join(root, name))
    print(f"evicted {n} files", file=sys.stderr)


if __name__ == "__main__":
    main()
