"""The loop's report, regenerated in a background thread: plots take seconds and jobs must not
wait for them. Requests made while one report is being written coalesce into one more; a failing
report never stops the loop (the tree is the record) and is said once."""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable


class ReportWriter:
    """Writes reports/report.py's report of question `qid` under `workspace`, off the loop's
    thread; `enabled=False` writes nothing (tests that do not look at the report)."""

    def __init__(self, workspace: Path, qid: int, say: Callable[[str], None], enabled: bool = True):
        self.workspace = workspace
        self.qid = qid
        self.say = say
        self.enabled = enabled
        self.error_shown = False
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._dirty = False

    def request(self, wait: bool = False) -> None:
        """Ask for a fresh report; `wait=True` returns once it is written (the end of the loop)."""
        if not self.enabled:
            return
        with self._lock:
            self._dirty = True
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._worker, daemon=True)
                self._thread.start()
        if wait:
            while True:
                t = self._thread
                if t is None or not t.is_alive():
                    break
                t.join()

    def _worker(self) -> None:
        while True:
            with self._lock:
                if not self._dirty:
                    self._thread = None
                    return
                self._dirty = False
            self._write_now()

    def _write_now(self) -> None:
        try:
            from reports.report import write_report
            write_report(self.workspace, self.qid)
        except Exception as e:
            if not self.error_shown:
                self.say(f"report failed ({type(e).__name__}: {e}); the tree is intact")
                self.error_shown = True
