"""``split_by_choice()``: one sub-stream per choice index, completion-level events on the parent."""

from __future__ import annotations

from collections.abc import Callable

from reactivex import Observable, abc
from reactivex.subject import Subject

from deltaflow.events import Event

__all__ = ["ChoiceStream", "split_by_choice"]


class ChoiceStream(Observable[Event]):
    """The events of one choice; ``choice_index`` says which."""

    def __init__(self, choice_index: int, subject: Subject[Event]) -> None:
        def subscribe(
            observer: abc.ObserverBase[Event], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            return subject.subscribe(observer, scheduler=scheduler)

        super().__init__(subscribe)
        self.choice_index = choice_index


def split_by_choice() -> Callable[[Observable[Event]], Observable[Event | ChoiceStream]]:
    r"""Split per-choice events (n > 1) into one ``ChoiceStream`` per choice index.

    The output carries the completion-level events (``chunk``, ``usage``, ``completion.done``,
    errors without a choice) as they are, and a ``ChoiceStream`` just before the first event of
    each new choice. As with ``group_by``, subscribe to a ``ChoiceStream`` when it arrives: events
    pushed before that are not replayed. Each ``ChoiceStream`` completes (or errors) with the parent.

    ::

        --chunk--delta(0)--delta(1)--chunk--delta(1)--usage--|
        [                 split_by_choice()                  ]
        --chunk--C0--------C1--------chunk-----------usage--|
                  \--delta(0)--------------------------------|
                             \--delta(1)---------delta(1)------|
    """

    def _split(source: Observable[Event]) -> Observable[Event | ChoiceStream]:
        def subscribe(
            observer: abc.ObserverBase[Event | ChoiceStream], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            subjects: dict[int, Subject[Event]] = {}

            def on_next(event: Event) -> None:
                choice_index = getattr(event, "choice_index", None)
                if choice_index is None:
                    observer.on_next(event)
                    return
                subject = subjects.get(choice_index)
                if subject is None:
                    subject = subjects[choice_index] = Subject()
                    observer.on_next(ChoiceStream(choice_index, subject))
                subject.on_next(event)

            def on_error(error: Exception) -> None:
                for subject in subjects.values():
                    subject.on_error(error)
                observer.on_error(error)

            def on_completed() -> None:
                for subject in subjects.values():
                    subject.on_completed()
                observer.on_completed()

            return source.subscribe(on_next, on_error, on_completed, scheduler=scheduler)

        return Observable(subscribe)

    return _split
