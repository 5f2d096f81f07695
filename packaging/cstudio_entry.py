"""Entry script of the PyInstaller bundle: the same dispatch as `cstudio` / `python -m app`."""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()  # a frozen child process must not start a second app
    from app.__main__ import main

    sys.exit(main())
