"""Pause / resume / stop a running trainer from another thread (the GUI, a signal handler)."""

from __future__ import annotations

import threading


class TrainingControl:
    """Flags the trainer checks once per step. All methods are thread-safe."""

    def __init__(self) -> None:
        self._running = threading.Event()
        self._running.set()
        self._stop = threading.Event()
        self.stop_reason = ""

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def stop(self, reason: str = "stopped by the user") -> None:
        self.stop_reason = reason
        self._stop.set()
        self._running.set()  # wake a paused trainer so that it can stop

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def wait_while_paused(self, timeout: float | None = None) -> bool:
        """Block while paused; True when running again (or stopping)."""
        return self._running.wait(timeout)
