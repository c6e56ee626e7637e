"""Cloud errors, each with a machine-readable ``code`` for state reports and MQTT replies."""

from __future__ import annotations


class CloudError(Exception):
    code = "cloud_error"


class CloudUnavailableError(CloudError):
    """Network error, timeout, or 5xx after the retries ran out."""

    code = "cloud_unavailable"


class CloudRateLimitedError(CloudUnavailableError):
    code = "cloud_rate_limited"


class CloudAuthError(CloudError):
    """401/403: the API key is wrong or lacks rights. A configuration problem, not a blip."""

    code = "cloud_unauthorised"


class CloudRequestError(CloudError):
    """4xx other than auth: our request is wrong (a bug or an API change)."""

    code = "cloud_bad_request"


class CloudNotFoundError(CloudRequestError):
    """404: the object asked for does not exist (deleted, for one)."""

    code = "cloud_not_found"


class CloudBadResponseError(CloudError):
    """The cloud answered something that is not the JSON it documents."""

    code = "cloud_bad_response"
