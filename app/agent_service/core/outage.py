"""An outage of something a loop retries, logged once when it begins and once when it ends."""

from __future__ import annotations

import structlog


class Outage:
    """Consecutive failures of one recurring attempt (a dequeue, a relay pass, a LISTEN).

    Loops that retry every few seconds would otherwise write a line per attempt and bury the one
    that says when the outage began. The count in a row also sets the retry's backoff.
    """

    def __init__(self, logger: str, began: str, ended: str) -> None:
        self._log = structlog.get_logger(logger)
        self._began, self._ended = began, ended
        self.failures = 0

    def failed(self, error: BaseException) -> int:
        """Counts a failure, with a warning for the first; returns the failures in a row."""
        self.failures += 1
        if self.failures == 1:
            self._log.warning(self._began, error=f"{type(error).__name__}: {error}")
        return self.failures

    def succeeded(self) -> None:
        if self.failures:
            self._log.info(self._ended, failed_attempts=self.failures)
            self.failures = 0
