"""``keyrings.cryptfile``'s encrypted-file keyring with the cheapest Argon2 costs, for the test suite only.

The real class derives each key with Argon2id at 64 MiB, 15 passes and 2 lanes: about 1.3 s of CPU on
both cores of the CI machine per access, three or more per process. tests/test_keyring_cryptfile.py runs
most of its processes with this subclass (``PYTHON_KEYRING_BACKEND=cheap_cryptfile.CheapCryptFileKeyring``,
tests/ on ``PYTHONPATH``, as for tests/slow_keyring.py): the same code, the same file format and the same
passphrase handling in cancelctl (which treats a subclass as the class itself), a thousandth of the
work. One test keeps the real class: the one where keyring chains it in by itself.
"""

import os

from keyrings.cryptfile.cryptfile import CryptFileKeyring


class CheapCryptFileKeyring(CryptFileKeyring):
    time_cost = 1
    memory_cost = 8  # KiB: argon2's minimum is 8 per lane
    parallelism = 1


class SelfUnlockingCryptFileKeyring(CheapCryptFileKeyring):
    """A user's subclass with a passphrase source of its own (here a variable; an agent or a TPM for real): it never
    prompts, so cancelctl must not demand ``$CANCELCTL_KEYRING_PASSPHRASE`` of it."""

    def _get_new_password(self) -> str:
        return os.environ["_CANCELCTL_TEST_OWN_PASSPHRASE"]

    def _unlock(self) -> None:
        if self._keyring_key is None:
            self._keyring_key = os.environ["_CANCELCTL_TEST_OWN_PASSPHRASE"]
        super()._unlock()
