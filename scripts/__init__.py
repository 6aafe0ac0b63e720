"""The commands: each file runs as ``python scripts/NAME.py`` or as the ``cdvd-NAME`` console command."""
