"""``python -m cancelctl`` works the same as ``cancelctl``."""

from cancelctl.main import main

if __name__ == "__main__":
    main()
