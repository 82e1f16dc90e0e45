"""The `kansoku` command's subcommand groups; `kansoku/cli.py` puts them together."""
