"""When surgery happens: the event epochs and the gradient-accumulation epochs of a `Schedule`.

Pure functions of the schedule and a 0-indexed epoch, so they are testable without a Trainer; the
callback asks them at every epoch start and end.
"""

from __future__ import annotations

from neurogrow.surgery.config import Schedule

__all__ = ["accumulates", "event_epochs", "is_event_epoch", "next_event_epoch"]


def is_event_epoch(schedule: Schedule, epoch: int) -> bool:
    """Whether surgery happens at the end of (0-indexed) `epoch`."""
    offset = epoch - schedule.start_epoch
    if offset < 0 or offset % schedule.interval:
        return False
    return schedule.num_events is None or offset // schedule.interval < schedule.num_events


def next_event_epoch(schedule: Schedule, epoch: int) -> int | None:
    """The first event epoch at or after `epoch`, or None when no event is left."""
    offset = max(0, epoch - schedule.start_epoch)
    nxt = schedule.start_epoch + -(-offset // schedule.interval) * schedule.interval
    return nxt if is_event_epoch(schedule, nxt) else None


def accumulates(schedule: Schedule, epoch: int) -> bool:
    """Gradients are accumulated in the `accumulate_epochs` epochs that end with an event epoch."""
    nxt = next_event_epoch(schedule, epoch)
    return nxt is not None and nxt - epoch < schedule.accumulate_epochs


def event_epochs(schedule: Schedule, max_epochs: int) -> list[int]:
    """The event epochs of a run of `max_epochs` epochs (epochs 0 .. max_epochs - 1)."""
    return [
        e for e in range(schedule.start_epoch, max_epochs, schedule.interval) if is_event_epoch(schedule, e)
    ]
