"""Recovery blobs: Argon2id time and peak memory of each parameter set, blob sizes.

    .venv/bin/python bench/recovery_kdf.py

Each set is run in a fresh child process so its peak RSS is its own.
"""

from __future__ import annotations

import json
import subprocess
import sys

CHILD = """
import json, os, resource, sys, time
from veil.formats import recovery_blob as rb
kdf = [k for k in rb.KDF_SETS if k.name == sys.argv[1]][0]
t = time.perf_counter()
rb.derive_key(b"a passphrase", os.urandom(16), kdf)
print(json.dumps({"set": kdf.name, "ops": kdf.opslimit, "MiB": kdf.memlimit >> 20,
                  "seconds": round(time.perf_counter() - t, 2),
                  "peak_rss_MiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}))
"""


def main() -> None:
    from veil.formats import recovery_blob as rb

    for kdf in rb.KDF_SETS:
        for _ in range(3):
            out = subprocess.run(
                [sys.executable, "-c", CHILD, kdf.name], capture_output=True, check=True, text=True
            )
            print(out.stdout.strip())
    print(json.dumps({"size_classes": rb.SIZE_CLASSES, "overhead": rb.OVERHEAD}))


if __name__ == "__main__":
    main()
