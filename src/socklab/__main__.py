"""`python -m socklab`: the same as the `socklab` console script."""

from socklab.cli.console import console_main

if __name__ == "__main__":
    console_main()
