"""Recovery: everything back from a passphrase and a small blob friends hold (docs/travel.md).

``passphrase`` (generated from EFF's wordlist, rated with zxcvbn),
``latest`` (the mutable record every backup updates), ``blob_files``
(a blob made and opened: envelope, shares, document), ``restore``
(every task back in its directory) and ``check`` (is every snapshot still
on the grid).
"""
