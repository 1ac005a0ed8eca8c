"""The `slmlab` command line: one file a subcommand group, `main.py` assembles them."""
