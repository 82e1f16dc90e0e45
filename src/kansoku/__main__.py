"""`python -m kansoku` is the same as the `kansoku` command."""

from kansoku.cli import main

main()
