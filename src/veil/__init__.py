"""veil: a least-authority, anonymity-first file store that speaks Tahoe-LAFS 1.20.

Layers, imports pointing down only:

    veil.formats    pure formats and protocol logic (no I/O, no asyncio)
    veil.codec      erasure coding, byte-identical to zfec (ISA-L when present)
    veil.services   storage server core, uploader, downloader over small interfaces
    veil.adapters   disk/memory backends, HTTPS server and client, network providers
    veil.frontends  command line
"""

__version__ = "0.1.0"
