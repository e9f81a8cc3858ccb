"""`python -m neurogrow.train` == `neurogrow-train`."""

from neurogrow.cli.train import main

if __name__ == "__main__":
    main()
