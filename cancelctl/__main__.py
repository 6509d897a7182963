"""``python -m cancelctl`` works the same as ``cancelctl``."""

from cancelctl.handoff import main

if __name__ == "__main__":
    main()
