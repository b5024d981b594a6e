"""A FUSE filesystem that loses what a power cut loses.

Everything lives in memory. Each file keeps two copies of its contents:
what readers see now, and what the last fsync/fdatasync of that file made
durable. Each directory likewise keeps its entries as seen now and as the
last fsync of the directory left them (creating, renaming or unlinking a
file is durable only once its directory is fsynced, as POSIX says and
ext4/XFS do not always spare you from). `sync_file_range` does not reach a
FUSE filesystem at all, so it counts for nothing here, as on a real power
cut it may count for nothing.

Writing "cut" to the control file `/.powercut` throws away everything not
made durable: every directory reverts to its durable entries, every file
still reachable to its durable contents; files reachable only through
entries that were never made durable vanish. Kill the writer first
(kill -9), then cut, then start it again: that is a power cut.

Reading `/.powercut` gives counters (fsyncs, cuts, bytes dropped).

Run: python3 powercut_fs.py MOUNTPOINT   (as root; needs libfuse3 and the
mfusepy package). Unmount with `umount MOUNTPOINT` (or fusermount3 -u).
LazyFS (github dsrhaslab/lazyfs) is the reference for the idea; this one
is small enough to read in one sitting and also drops directory changes.
"""

import errno
import os
import stat
import sys
import threading
import time

import mfusepy as fuse

CONTROL = "/.powercut"


class Node:
    def __init__(self, is_dir: bool, mode: int):
        now = time.time()
        self.is_dir = is_dir
        self.mode = mode
        self.mtime = now
        self.ctime = now
        # Files: contents now, contents at the last fsync, and the byte
        # ranges written since (merged at the next fsync).
        self.data = bytearray()
        self.synced = bytearray()
        self.dirty = []
        # Directories: entries now and at the last fsync of the directory.
        self.entries = {}
        self.synced_entries = {}

    def mark(self, start: int, end: int):
        if end > start:
            self.dirty.append((start, end))

    def sync(self) -> int:
        """Makes the contents durable; returns the bytes copied."""
        copied = 0
        self.synced[len(self.data):] = b""
        if len(self.synced) < len(self.data):
            self.synced.extend(bytes(len(self.data) - len(self.synced)))
        for start, end in merge(self.dirty):
            end = min(end, len(self.data))
            if end > start:
                self.synced[start:end] = self.data[start:end]
                copied += end - start
        self.dirty = []
        return copied


def merge(ranges):
    out = []
    for start, end in sorted(ranges):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


class PowerCutFs(fuse.Operations):
    def __init__(self):
        self.mutex = threading.Lock()
        self.root = Node(True, stat.S_IFDIR | 0o755)
        self.handles = {}
        self.next_fh = 1
        self.stats = {"fsync": 0, "fsyncdir": 0, "cuts": 0, "dropped_bytes": 0, "dropped_entries": 0}

    # -- helpers -------------------------------------------------------

    def lookup(self, path: str) -> Node:
        node = self.root
        for part in [p for p in path.split("/") if p]:
            if not node.is_dir or part not in node.entries:
                raise fuse.FuseOSError(errno.ENOENT)
            node = node.entries[part]
        return node

    def parent(self, path: str):
        head, name = os.path.split(path.rstrip("/"))
        parent = self.lookup(head or "/")
        if not parent.is_dir:
            raise fuse.FuseOSError(errno.ENOTDIR)
        return parent, name

    def node_of(self, path: str, fh) -> Node:
        if fh and fh in self.handles:
            return self.handles[fh]
        return self.lookup(path)

    def cut(self):
        """Everything not made durable is gone."""
        self.stats["cuts"] += 1
        seen = set()
        stack = [self.root]
        while stack:
            node = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            if node.is_dir:
                self.stats["dropped_entries"] += len(set(node.entries.items()) ^ set(node.synced_entries.items()))
                node.entries = dict(node.synced_entries)
                stack.extend(node.entries.values())
            else:
                self.stats["dropped_bytes"] += sum(e - s for s, e in node.dirty)
                node.data = bytearray(node.synced)
                node.dirty = []
        self.handles = {}

    # -- metadata --------------------------------------------------------

    def getattr(self, path, fh=None):
        with self.mutex:
            if path == CONTROL:
                return {"st_mode": stat.S_IFREG | 0o600, "st_nlink": 1, "st_size": 4096}
            node = self.node_of(path, fh)
            size = 4096 if node.is_dir else len(node.data)
            return {
                "st_mode": node.mode,
                "st_nlink": 2 if node.is_dir else 1,
                "st_size": size,
                "st_blocks": (size + 511) // 512,
                "st_blksize": 4096,
                "st_mtime": node.mtime,
                "st_ctime": node.ctime,
                "st_atime": node.mtime,
                "st_uid": os.getuid(),
                "st_gid": os.getgid(),
            }

    def readdir(self, path, fh):
        with self.mutex:
            return [".", ".."] + list(self.lookup(path).entries)

    def mkdir(self, path, mode):
        with self.mutex:
            parent, name = self.parent(path)
            if name in parent.entries:
                raise fuse.FuseOSError(errno.EEXIST)
            parent.entries[name] = Node(True, stat.S_IFDIR | (mode & 0o7777))
            return 0

    def rmdir(self, path):
        with self.mutex:
            parent, name = self.parent(path)
            node = parent.entries.get(name)
            if node is None:
                raise fuse.FuseOSError(errno.ENOENT)
            if node.entries:
                raise fuse.FuseOSError(errno.ENOTEMPTY)
            del parent.entries[name]
            return 0

    def unlink(self, path):
        with self.mutex:
            parent, name = self.parent(path)
            if parent.entries.pop(name, None) is None:
                raise fuse.FuseOSError(errno.ENOENT)
            return 0

    def rename(self, old, new, flags=0):
        with self.mutex:
            old_parent, old_name = self.parent(old)
            new_parent, new_name = self.parent(new)
            node = old_parent.entries.get(old_name)
            if node is None:
                raise fuse.FuseOSError(errno.ENOENT)
            del old_parent.entries[old_name]
            new_parent.entries[new_name] = node
            return 0

    def link(self, target, source):
        """A hard link `target` to the file at `source` (one node, two names)."""
        with self.mutex:
            node = self.lookup(source)
            if node.is_dir:
                raise fuse.FuseOSError(errno.EPERM)
            parent, name = self.parent(target)
            if name in parent.entries:
                raise fuse.FuseOSError(errno.EEXIST)
            parent.entries[name] = node
            return 0

    def chmod(self, path, mode, fh=None):
        with self.mutex:
            node = self.node_of(path, fh)
            node.mode = (node.mode & ~0o7777) | (mode & 0o7777)
            return 0

    def chown(self, path, uid, gid, fh=None):
        return 0

    def utimens(self, path, times=None, fh=None):
        with self.mutex:
            if path != CONTROL:
                self.node_of(path, fh).mtime = time.time()
            return 0

    def statfs(self, path):
        return {"f_bsize": 4096, "f_frsize": 4096, "f_blocks": 1 << 26, "f_bfree": 1 << 25, "f_bavail": 1 << 25,
                "f_files": 1 << 20, "f_ffree": 1 << 20, "f_favail": 1 << 20, "f_namemax": 255}

    # -- files -------------------------------------------------------

    def _handle(self, node) -> int:
        fh = self.next_fh
        self.next_fh += 1
        self.handles[fh] = node
        return fh

    def create(self, path, mode, fi=None):
        with self.mutex:
            parent, name = self.parent(path)
            node = parent.entries.get(name)
            if node is None:
                node = Node(False, stat.S_IFREG | (mode & 0o7777))
                parent.entries[name] = node
            return self._handle(node)

    def open(self, path, flags):
        with self.mutex:
            if path == CONTROL:
                return 0
            node = self.lookup(path)
            if flags & os.O_TRUNC:
                node.mark(0, len(node.data))
                node.data = bytearray()
            return self._handle(node)

    def release(self, path, fh):
        with self.mutex:
            self.handles.pop(fh, None)
            return 0

    def read(self, path, size, offset, fh):
        with self.mutex:
            if path == CONTROL:
                return (" ".join(f"{k}={v}" for k, v in self.stats.items()) + "\n").encode()[offset:offset + size]
            node = self.node_of(path, fh)
            return bytes(node.data[offset:offset + size])

    def write(self, path, data, offset, fh):
        with self.mutex:
            if path == CONTROL:
                if data.strip() == b"cut":
                    self.cut()
                return len(data)
            node = self.node_of(path, fh)
            end = offset + len(data)
            if len(node.data) < offset:
                node.mark(len(node.data), offset)
                node.data.extend(bytes(offset - len(node.data)))
            node.data[offset:end] = data
            node.mark(offset, end)
            node.mtime = time.time()
            return len(data)

    def truncate(self, path, length, fh=None):
        with self.mutex:
            if path == CONTROL:
                return 0
            node = self.node_of(path, fh)
            old = len(node.data)
            if length < old:
                del node.data[length:]
            else:
                node.data.extend(bytes(length - old))
            node.mark(min(old, length), max(old, length))
            return 0

    def fallocate(self, path, mode, offset, length, fh):
        with self.mutex:
            node = self.node_of(path, fh)
            punch = mode & 0x02  # FALLOC_FL_PUNCH_HOLE (with KEEP_SIZE)
            end = offset + length
            if punch:
                end = min(end, len(node.data))
                if end > offset:
                    node.data[offset:end] = bytes(end - offset)
                    node.mark(offset, end)
            elif not mode & 0x01 and end > len(node.data):  # grow unless KEEP_SIZE
                node.mark(len(node.data), end)
                node.data.extend(bytes(end - len(node.data)))
            return 0

    def fsync(self, path, datasync, fh):
        with self.mutex:
            self.stats["fsync"] += 1
            self.node_of(path, fh).sync()
            return 0

    def fsyncdir(self, path, datasync, fh):
        with self.mutex:
            self.stats["fsyncdir"] += 1
            node = self.lookup(path)
            node.synced_entries = dict(node.entries)
            return 0

    def flush(self, path, fh):
        return 0

    def access(self, path, amode):
        return 0


def main():
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} MOUNTPOINT")
    # No kernel caching of data, attributes or names: after a cut the
    # kernel must not serve what the filesystem no longer has.
    fuse.FUSE(PowerCutFs(), sys.argv[1], foreground=True, nothreads=False, direct_io=True,
              attr_timeout=0, entry_timeout=0, negative_timeout=0, fsname="powercut")


if __name__ == "__main__":
    main()
