"""What the user is told when something fails: one sentence, never a traceback (DESIGN.md)."""

from __future__ import annotations

from ..errors import memory_advice, out_of_memory


def user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions whose message is already the one sentence to show: every front end's, and the
    GUI's own."""
    from ..errors import user_errors as common_user_errors
    from ..session import SessionError
    from .exports import ExportError

    return (*common_user_errors(), SessionError, ExportError)


def one_sentence(what: str, exc: BaseException) -> str:
    """The sentence the status bar shows for ``exc`` raised while doing ``what``."""
    if isinstance(exc, user_errors()):
        return str(exc)
    if out_of_memory(exc):
        return f"{what} failed: {memory_advice(exc)}"
    first = (str(exc).strip().splitlines() or [""])[0][:160]
    return f"{what} failed ({type(exc).__name__}{': ' + first if first else ''}); the details are in the Log tab."
