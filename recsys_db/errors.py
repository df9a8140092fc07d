"""The package's exceptions: one root, so callers can catch everything recsys-db raises."""


class RecsysError(Exception):
    """Root of every error recsys-db raises on purpose."""


class ConfigError(RecsysError):
    """The environment or configuration is not usable (bad URL, missing extension...)."""


class IngestError(RecsysError):
    """Input events were rejected; the message names the line and the problem."""

    def __init__(self, message: str, problems: list[tuple[int, str]] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class JobError(RecsysError):
    """A job could not run or failed."""
