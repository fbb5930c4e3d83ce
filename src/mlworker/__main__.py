"""``python -m mlworker`` runs the CLI."""

from mlworker.cli import main

if __name__ == "__main__":  # pool processes re-import the main module; they must not run it
    main()
