"""The one error the local stack raises."""


class StackError(RuntimeError):
    """The local stack cannot be brought to the state asked for; the message says why."""
