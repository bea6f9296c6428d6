"""A background job that runs ``run_due`` every ``interval`` seconds until stopped (outbox, digests)."""

from __future__ import annotations

import logging
import threading
from typing import Any

log = logging.getLogger("leadbot")


class Loop:
    name = "loop"
    interval = 5.0

    def run_due(self) -> Any:  # pragma: no cover - each job defines it
        raise NotImplementedError

    def start(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_due()
            except Exception:
                log.exception("%s run failed; trying again in %ss", self.name, self.interval)
            self._stop.wait(self.interval)

    def stop(self) -> None:
        stop = getattr(self, "_stop", None)
        if stop is not None:
            stop.set()
            self._thread.join(30)
