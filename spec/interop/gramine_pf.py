#!/usr/bin/python3
"""An independent reader of Gramine encrypted files (format v2.0), written in Python from the
format description in ../shared/reference/gramine.md, not from enclavify's TypeScript code. The
tests use it to check that what enclavify writes is readable by another implementation.

usage: gramine_pf.py KEY_HEX EXPECTED_PATH FILE > plaintext
Exit status 0 and the plaintext on stdout; 1 and a message on stderr when the file is invalid."""
import struct
import sys

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.cmac import CMAC
from cryptography.hazmat.primitives.ciphers import algorithms

NODE = 4096
LABEL = b"SGX-PROTECTED-FS-METADATA-KEY".ljust(64, b"\0")


def fail(msg):
    sys.stderr.write("gramine_pf.py: %s\n" % msg)
    sys.exit(1)


def gcm_open(key, blob, tag, what):
    try:
        return AESGCM(key).decrypt(b"\0" * 12, blob + tag, None)
    except Exception:
        fail("%s: MAC mismatch" % what)


def main():
    key = bytes.fromhex(sys.argv[1])
    expected_path = sys.argv[2]
    data = open(sys.argv[3], "rb").read()
    if len(data) == 0 or len(data) % NODE:
        fail("size %d is not a positive multiple of 4096" % len(data))
    node0 = data[:NODE]
    if node0[:8] != b"GRAFS_PF":
        fail("bad magic")
    major, minor = node0[8], node0[9]
    if (major, minor) != (2, 0):
        fail("unsupported version %d.%d" % (major, minor))
    nonce, mac = node0[10:42], node0[42:58]
    c = CMAC(algorithms.AES(key))
    c.update(struct.pack("<I", 1) + LABEL + nonce + struct.pack("<I", 128))
    meta_key = c.finalize()
    meta = gcm_open(meta_key, node0[59:59 + 3884], mac, "metadata")
    path = meta[:772].split(b"\0", 1)[0].decode()
    if path != expected_path:
        fail("path mismatch: stored %r, expected %r" % (path, expected_path))
    (size,) = struct.unpack("<Q", meta[772:780])
    root_key, root_mac = meta[780:796], meta[796:812]
    head = meta[812:812 + 3072]
    out = [head[:min(size, 3072)]]
    if size <= 3072:
        if len(data) != NODE:
            fail("file has %d bytes, expected %d" % (len(data), NODE))
        return out
    ndata = (size - 3072 + NODE - 1) // NODE
    nmht = (ndata + 95) // 96
    total = 2 + ndata + (nmht - 1)
    if len(data) != total * NODE:
        fail("file has %d bytes, expected %d" % (len(data), total * NODE))

    def node(phys):
        return data[phys * NODE:(phys + 1) * NODE]

    mhts = {0: gcm_open(root_key, node(1), root_mac, "MHT node 0")}

    def mht(l):
        if l not in mhts:
            parent = mht((l - 1) // 32)
            slot = 96 * 32 + ((l - 1) % 32) * 32
            mhts[l] = gcm_open(parent[slot:slot + 16], node(1 + 97 * l), parent[slot + 16:slot + 32], "MHT node %d" % l)
        return mhts[l]

    remaining = size - 3072
    for d in range(ndata):
        l = d // 96
        m = mht(l)
        s = (d % 96) * 32
        pt = gcm_open(m[s:s + 16], node(d + 2 + l), m[s + 16:s + 32], "data node %d" % d)
        out.append(pt[:min(NODE, remaining)])
        remaining -= NODE
    return out


if __name__ == "__main__":
    for chunk in main():
        sys.stdout.buffer.write(chunk)
