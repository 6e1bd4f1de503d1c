"""Stop sequences over a stream of text pieces: what may be shown now, and where to stop.

A model without a chat template is prompted with plain "User: … Assistant:" turns; a base
model then goes on to write the next "User:" turn itself. The answer ends there. A piece that
could be the start of a stop sequence is held back until the next piece tells.
"""

from __future__ import annotations


class StopMatcher:
    def __init__(self, stops: tuple[str, ...]) -> None:
        self.stops = tuple(s for s in stops if s)
        self.held = ""
        self.stopped = False

    def feed(self, piece: str) -> str:
        """The text that may be shown now; sets `stopped` when a stop sequence was reached."""
        if not self.stops:
            return piece
        text = self.held + piece
        found = [text.find(stop) for stop in self.stops if stop in text]
        if found:
            self.stopped, self.held = True, ""
            return text[: min(found)]
        # The longest end of the text that a stop sequence begins with.
        keep = max(
            (n for stop in self.stops for n in range(1, len(stop)) if text.endswith(stop[:n])), default=0
        )
        self.held = text[len(text) - keep :] if keep else ""
        return text[: len(text) - keep]

    def flush(self) -> str:
        """The text held back, once the stream has ended without reaching a stop."""
        held, self.held = self.held, ""
        return held
