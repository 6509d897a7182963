"""cancelctl: the panic button for crypto trading.

Nothing is imported here on purpose: ``cancelctl cancel all`` must reach the
first cancel request with as few imports as possible.
"""

__version__ = "0.1.0"
