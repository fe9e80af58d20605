"""``python -m graphspec.cli``. Guarded: Dask's spawned worker processes re-import the
main module, and must not run the command again."""
from graphspec.cli import main

if __name__ == "__main__":
    main()
