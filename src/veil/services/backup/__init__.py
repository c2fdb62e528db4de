"""Backups in Tahoe's layout: ``PATH/Archives/<UTC time>`` and ``PATH/Latest``.

Pure logic (no I/O): ``metadata`` (what an entry records about a local file,
snapshot names, the directory hash, excludes), ``retention`` (restic's
``forget`` policies) and ``restore_plan`` (what a restore must do to a path).
The runs themselves, over a client's uploader, downloader and directories:
``backup_run`` and ``restore_run``; ``snapshots`` lists a backup's history.
"""
