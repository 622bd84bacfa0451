"""Errors of the landmark-campaign domain: each carries a sentence for the user."""


class LandmarkDataError(ValueError):
    """Bad input or a broken rule; `message` is a sentence for the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SplitRuleError(LandmarkDataError):
    """Model labels offered for a validation photo, or a photo's fixed split changed."""
